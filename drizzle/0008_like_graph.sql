-- Edited by hand (drizzle cannot declare WITHOUT ROWID). The like graph: who liked or reposted what, in
-- integers, for the collaborative agents (like-minded, friends-liked). Rows stored before this migration
-- have no actor and stay out of the graph; it fills from the firehose within one feed window.
CREATE TABLE `actors` (
	`id` integer PRIMARY KEY NOT NULL,
	`did` text NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `actors_did_unique` ON `actors` (`did`);--> statement-breakpoint
CREATE TABLE `like_graph` (
	`subject` integer NOT NULL,
	`actor` integer NOT NULL,
	`kind` integer NOT NULL,
	PRIMARY KEY(`subject`, `actor`, `kind`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE INDEX `like_graph_actor` ON `like_graph` (`actor`,`kind`,`subject`);--> statement-breakpoint
ALTER TABLE `engagements` ADD `actor` integer;
