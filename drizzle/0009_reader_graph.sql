CREATE TABLE `author_consent` (
	`did` text PRIMARY KEY NOT NULL,
	`hide` integer DEFAULT 0 NOT NULL,
	`hide_rev` text DEFAULT '' NOT NULL,
	`no_unauth` integer DEFAULT 0 NOT NULL,
	`profile_rev` text DEFAULT '' NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `author_consent_updated` ON `author_consent` (`updated_at`);--> statement-breakpoint
CREATE TABLE `blocks` (
	`uri` text PRIMARY KEY NOT NULL,
	`author` text NOT NULL,
	`subject` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `blocks_author` ON `blocks` (`author`);--> statement-breakpoint
CREATE INDEX `blocks_subject` ON `blocks` (`subject`);--> statement-breakpoint
CREATE TABLE `list_blocks` (
	`uri` text PRIMARY KEY NOT NULL,
	`author` text NOT NULL,
	`list` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `list_blocks_author` ON `list_blocks` (`author`);--> statement-breakpoint
CREATE INDEX `list_blocks_list` ON `list_blocks` (`list`);--> statement-breakpoint
CREATE TABLE `list_items` (
	`uri` text PRIMARY KEY NOT NULL,
	`list` text NOT NULL,
	`subject` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `list_items_list` ON `list_items` (`list`,`subject`);--> statement-breakpoint
CREATE TABLE `reader_likes` (
	`uri` text PRIMARY KEY NOT NULL,
	`author` text NOT NULL,
	`subject` text NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `reader_likes_author` ON `reader_likes` (`author`,`at`);--> statement-breakpoint
CREATE TABLE `readers` (
	`did` text PRIMARY KEY NOT NULL,
	`first_seen` integer NOT NULL,
	`last_seen` integer NOT NULL,
	`backfilled_at` integer,
	`attempts` integer DEFAULT 0 NOT NULL,
	`next_try_at` integer DEFAULT 0 NOT NULL,
	`claimed_until` integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX `readers_last_seen` ON `readers` (`last_seen`);--> statement-breakpoint
CREATE INDEX `readers_pending` ON `readers` (`backfilled_at`,`next_try_at`);--> statement-breakpoint
-- subscribers with a saved mix are readers already: their graph is backfilled when next seen
INSERT INTO `readers` (`did`, `first_seen`, `last_seen`) SELECT DISTINCT `subscriber`, CAST(unixepoch('subsec') * 1000 AS INTEGER), CAST(unixepoch('subsec') * 1000 AS INTEGER) FROM `mixes` WHERE true ON CONFLICT(`did`) DO NOTHING;
