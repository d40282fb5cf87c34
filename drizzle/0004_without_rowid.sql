-- Written by hand (drizzle cannot declare WITHOUT ROWID or triggers). Tables looked up only by their
-- primary key are rebuilt WITHOUT ROWID: one b-tree instead of a rowid table plus a unique index holding
-- the same key, so about half the pages to write per row. Rows are copied as they are.
CREATE TABLE `__new_engagements` (
	`uri` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`author` text NOT NULL,
	`subject` text NOT NULL
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_engagements` (`uri`, `kind`, `author`, `subject`) SELECT `uri`, `kind`, `author`, `subject` FROM `engagements`;
--> statement-breakpoint
DROP TABLE `engagements`;
--> statement-breakpoint
ALTER TABLE `__new_engagements` RENAME TO `engagements`;
--> statement-breakpoint
CREATE INDEX `engagements_subject` ON `engagements` (`subject`);
--> statement-breakpoint
CREATE TABLE `__new_feed_items` (
	`snapshot` integer NOT NULL,
	`rank` integer NOT NULL,
	`post_uri` text NOT NULL,
	`score` real NOT NULL,
	`context` text NOT NULL,
	PRIMARY KEY(`snapshot`, `rank`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_feed_items` (`snapshot`, `rank`, `post_uri`, `score`, `context`) SELECT `snapshot`, `rank`, `post_uri`, `score`, `context` FROM `feed_items`;
--> statement-breakpoint
DROP TABLE `feed_items`;
--> statement-breakpoint
ALTER TABLE `__new_feed_items` RENAME TO `feed_items`;
--> statement-breakpoint
CREATE INDEX `feed_items_post` ON `feed_items` (`post_uri`);
--> statement-breakpoint
-- Whoever deletes an item (the writer honouring a delete, retention, pruning) bumps its snapshot's version,
-- so a server holding pages of that snapshot in memory sees they changed with one primary-key read.
CREATE TRIGGER `feed_items_deleted` AFTER DELETE ON `feed_items` BEGIN
	UPDATE `feed_snapshots` SET `version` = `version` + 1 WHERE `id` = OLD.`snapshot`;
END;
