CREATE TABLE `agent_instances` (
	`key` text PRIMARY KEY NOT NULL,
	`agent` text NOT NULL,
	`options` text NOT NULL,
	`last_used` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `agent_scores` (
	`instance` text NOT NULL,
	`post_uri` text NOT NULL,
	`score` real,
	PRIMARY KEY(`instance`, `post_uri`)
);
--> statement-breakpoint
CREATE INDEX `agent_scores_post` ON `agent_scores` (`post_uri`);--> statement-breakpoint
CREATE TABLE `counters` (
	`name` text PRIMARY KEY NOT NULL,
	`value` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `cursors` (
	`source` text PRIMARY KEY NOT NULL,
	`cursor` text NOT NULL,
	`event_time` integer,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `engagements` (
	`uri` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`author` text NOT NULL,
	`subject` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `engagements_subject` ON `engagements` (`subject`);--> statement-breakpoint
CREATE TABLE `feed_items` (
	`snapshot` integer NOT NULL,
	`rank` integer NOT NULL,
	`post_uri` text NOT NULL,
	`score` real NOT NULL,
	`context` text NOT NULL,
	PRIMARY KEY(`snapshot`, `rank`)
);
--> statement-breakpoint
CREATE INDEX `feed_items_post` ON `feed_items` (`post_uri`);--> statement-breakpoint
CREATE TABLE `feed_snapshots` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`feed` text NOT NULL,
	`fingerprint` text NOT NULL,
	`built_at` integer NOT NULL,
	`size` integer NOT NULL,
	`build_ms` real NOT NULL
);
--> statement-breakpoint
CREATE INDEX `feed_snapshots_key` ON `feed_snapshots` (`feed`,`fingerprint`,`id`);--> statement-breakpoint
CREATE TABLE `follows` (
	`uri` text PRIMARY KEY NOT NULL,
	`author` text NOT NULL,
	`subject` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `follows_author_subject` ON `follows` (`author`,`subject`);--> statement-breakpoint
CREATE TABLE `inactive_accounts` (
	`did` text PRIMARY KEY NOT NULL,
	`status` text NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `mixes` (
	`subscriber` text NOT NULL,
	`feed` text NOT NULL,
	`source` text NOT NULL,
	`agents` text NOT NULL,
	`fingerprint` text NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`subscriber`, `feed`, `source`)
);
--> statement-breakpoint
CREATE TABLE `posts` (
	`uri` text PRIMARY KEY NOT NULL,
	`cid` text NOT NULL,
	`author` text NOT NULL,
	`created_at` integer NOT NULL,
	`indexed_at` integer NOT NULL,
	`text` text NOT NULL,
	`langs` text NOT NULL,
	`reply_root` text,
	`reply_parent` text,
	`embed` text,
	`quote` text,
	`tags` text NOT NULL,
	`labels` text NOT NULL,
	`like_count` integer DEFAULT 0 NOT NULL,
	`repost_count` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX `posts_created_at` ON `posts` (`created_at`);--> statement-breakpoint
CREATE INDEX `posts_author` ON `posts` (`author`);--> statement-breakpoint
CREATE TABLE `rejected_events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`source` text NOT NULL,
	`reason` text NOT NULL,
	`payload` text NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `rejected_events_at` ON `rejected_events` (`at`);--> statement-breakpoint
CREATE TABLE `tombstones` (
	`uri` text PRIMARY KEY NOT NULL,
	`at` integer NOT NULL
);
