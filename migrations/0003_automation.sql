CREATE TABLE `latency_orders` (
	`service` text NOT NULL,
	`client_region` text NOT NULL,
	`regions` text NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`service`, `client_region`)
);
--> statement-breakpoint
CREATE TABLE `route_state` (
	`service` text NOT NULL,
	`route` text NOT NULL,
	`mirror_percent` real,
	`canary_weight` real,
	`phase` text NOT NULL,
	`paused` integer DEFAULT false NOT NULL,
	`sample_bookmark` integer DEFAULT 0 NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`service`, `route`)
);
--> statement-breakpoint
ALTER TABLE `overrides` ADD `route` text;--> statement-breakpoint
ALTER TABLE `overrides` ADD `value` real;