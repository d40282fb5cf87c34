-- Edited by hand (drizzle cannot declare WITHOUT ROWID, nor compute the keys). Likes and reposts are keyed
-- by a 64-bit hash of their URI (engagement_key(), registered by openDb: see engagementKey in
-- src/store/writer.ts), and lose their author and the index on subject: every like used to be two random
-- URI-keyed b-tree inserts. The likes of posts not stored yet wait in their own small table, by post.
CREATE TABLE `waiting_engagements` (
	`subject` text NOT NULL,
	`key` integer NOT NULL,
	`kind` text NOT NULL,
	`n` integer DEFAULT 1 NOT NULL,
	PRIMARY KEY(`subject`, `key`, `kind`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE TABLE `__new_engagements` (
	`key` integer PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`subject` text NOT NULL
);
--> statement-breakpoint
INSERT OR IGNORE INTO `__new_engagements` (`key`, `kind`, `subject`) SELECT engagement_key(`uri`), `kind`, `subject` FROM `engagements`;
--> statement-breakpoint
-- rows of posts not stored: waiting for their post (or orphans, which retention sweeps as before)
INSERT OR IGNORE INTO `waiting_engagements` (`subject`, `key`, `kind`, `n`)
	SELECT `subject`, engagement_key(`uri`), `kind`, 1 FROM `engagements` e WHERE NOT EXISTS (SELECT 1 FROM `posts` p WHERE p.`uri` = e.`subject`);
--> statement-breakpoint
DROP TABLE `engagements`;
--> statement-breakpoint
ALTER TABLE `__new_engagements` RENAME TO `engagements`;
