CREATE TABLE `pending_batches` (
	`id` text PRIMARY KEY NOT NULL,
	`source` text NOT NULL,
	`resume_from` text NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `pending_batches_source` ON `pending_batches` (`source`,`at`);