-- The like graph's newest changes, appended in order and folded into like_graph in bulk by the store
-- (src/store/like-graph.ts): op 0/1 links a like/repost, 2/3 unlinks one, 4 drops every row of subject.
CREATE TABLE `like_log` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`subject` integer NOT NULL,
	`actor` integer NOT NULL,
	`op` integer NOT NULL
);
