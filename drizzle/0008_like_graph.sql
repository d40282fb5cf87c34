-- Edited by hand (drizzle cannot declare WITHOUT ROWID). The like graph: who liked or reposted what, in
-- integers (53-bit hashes of the post's URI and the account's DID), for the collaborative agents (like-minded,
-- friends-liked). It fills from the firehose within one feed window.
CREATE TABLE `like_graph` (
	`subject` integer NOT NULL,
	`actor` integer NOT NULL,
	`kind` integer NOT NULL,
	PRIMARY KEY(`subject`, `actor`, `kind`)
) WITHOUT ROWID;
--> statement-breakpoint
CREATE INDEX `like_graph_actor` ON `like_graph` (`actor`,`kind`,`subject`);
