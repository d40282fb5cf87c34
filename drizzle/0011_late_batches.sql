-- Edited by hand: the accounts known to be inactive keep their status (with no order known yet: any event
-- about them is newer). Their posts were purged before this migration and come back only when stored again.
CREATE TABLE `account_status` (
	`did` text PRIMARY KEY NOT NULL,
	`status` text NOT NULL,
	`rev` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `account_status_rev` ON `account_status` (`rev`);--> statement-breakpoint
CREATE TABLE `withheld_posts` (
	`uri` text PRIMARY KEY NOT NULL,
	`cid` text NOT NULL,
	`author` text NOT NULL,
	`created_at` integer NOT NULL,
	`text` text NOT NULL,
	`langs` text NOT NULL,
	`reply_root` text,
	`reply_parent` text,
	`embed` text,
	`quote` text,
	`tags` text NOT NULL,
	`labels` text NOT NULL,
	`rev` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `withheld_posts_author` ON `withheld_posts` (`author`);--> statement-breakpoint
CREATE INDEX `withheld_posts_created_at` ON `withheld_posts` (`created_at`);--> statement-breakpoint
INSERT INTO `account_status` (`did`, `status`, `rev`) SELECT `did`, `status`, '' FROM `inactive_accounts`;--> statement-breakpoint
DROP TABLE `inactive_accounts`;--> statement-breakpoint
ALTER TABLE `posts` ADD `rev` text DEFAULT '' NOT NULL;