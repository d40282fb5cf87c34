CREATE TABLE `interaction_state` (
	`subscriber` text NOT NULL,
	`feed` text NOT NULL,
	`n` integer DEFAULT 0 NOT NULL,
	`version` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`subscriber`, `feed`)
);
--> statement-breakpoint
-- "seen" was recorded once per item by a look-up before each insert: any repeat is dropped before the unique index exists.
DELETE FROM `interactions` WHERE `event` = 'seen' AND `id` NOT IN (SELECT min(`id`) FROM `interactions` WHERE `event` = 'seen' GROUP BY `subscriber`, `feed`, `post_uri`);
--> statement-breakpoint
CREATE UNIQUE INDEX `interactions_seen` ON `interactions` (`subscriber`,`feed`,`post_uri`) WHERE event = 'seen';
--> statement-breakpoint
INSERT INTO `interaction_state` (`subscriber`, `feed`, `n`, `version`) SELECT `subscriber`, `feed`, count(*), 1 FROM `interactions` GROUP BY `subscriber`, `feed`;
--> statement-breakpoint
-- Every path that adds, removes or undoes an interaction (the writer, the cap, retention) keeps the reader's count and version.
CREATE TRIGGER `interactions_state_insert` AFTER INSERT ON `interactions` BEGIN
	INSERT INTO `interaction_state` (`subscriber`, `feed`, `n`, `version`) VALUES (NEW.`subscriber`, NEW.`feed`, 1, 1)
		ON CONFLICT (`subscriber`, `feed`) DO UPDATE SET `n` = `n` + 1, `version` = `version` + 1;
END;
--> statement-breakpoint
CREATE TRIGGER `interactions_state_delete` AFTER DELETE ON `interactions` BEGIN
	UPDATE `interaction_state` SET `n` = `n` - 1, `version` = `version` + 1 WHERE `subscriber` = OLD.`subscriber` AND `feed` = OLD.`feed`;
END;
--> statement-breakpoint
CREATE TRIGGER `interactions_state_undo` AFTER UPDATE OF `undone` ON `interactions` BEGIN
	UPDATE `interaction_state` SET `version` = `version` + 1 WHERE `subscriber` = NEW.`subscriber` AND `feed` = NEW.`feed`;
END;
