CREATE TABLE `agents` (
	`id` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`status` text NOT NULL,
	`source` text,
	`url` text,
	`config` text NOT NULL,
	`meta` text NOT NULL,
	`submitted_by` text NOT NULL,
	`submitted_at` integer NOT NULL,
	`decided_at` integer,
	`note` text,
	`revision` integer DEFAULT 1 NOT NULL
);
--> statement-breakpoint
CREATE TABLE `interactions` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`subscriber` text NOT NULL,
	`feed` text NOT NULL,
	`post_uri` text NOT NULL,
	`event` text NOT NULL,
	`feed_context` text,
	`req_id` text,
	`at` integer NOT NULL,
	`undone` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX `interactions_reader` ON `interactions` (`subscriber`,`feed`,`id`);--> statement-breakpoint
CREATE INDEX `interactions_at` ON `interactions` (`at`);--> statement-breakpoint
CREATE TABLE `mix_records` (
	`uri` text PRIMARY KEY NOT NULL,
	`author` text NOT NULL,
	`feed` text NOT NULL,
	`agents` text NOT NULL,
	`created_at` integer NOT NULL,
	`rev` text DEFAULT '' NOT NULL
);
--> statement-breakpoint
CREATE INDEX `mix_records_author_feed` ON `mix_records` (`author`,`feed`,`created_at`);--> statement-breakpoint
CREATE INDEX `follows_subject` ON `follows` (`subject`);