CREATE TABLE `post_changes` (
	`seq` integer PRIMARY KEY NOT NULL,
	`post_id` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `post_deletions` (
	`seq` integer PRIMARY KEY NOT NULL,
	`uri` text NOT NULL
);
--> statement-breakpoint
-- Ranked lists become one row each: the old snapshots' items go with their table (readers paging one simply reach its end).
DELETE FROM `feed_snapshots`;
--> statement-breakpoint
DROP TABLE `feed_items`;--> statement-breakpoint
ALTER TABLE `feed_snapshots` ADD `items` text DEFAULT '[]' NOT NULL;
