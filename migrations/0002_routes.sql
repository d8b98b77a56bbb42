CREATE TABLE `route_samples` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` integer NOT NULL,
	`instance` text NOT NULL,
	`service` text NOT NULL,
	`route` text NOT NULL,
	`kind` text NOT NULL,
	`requests` integer NOT NULL,
	`errors` integer NOT NULL,
	`latency_ms_sum` real NOT NULL,
	`latency_buckets` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `route_samples_route` ON `route_samples` (`service`,`route`,`id`);--> statement-breakpoint
CREATE TABLE `routes` (
	`service` text NOT NULL,
	`name` text NOT NULL,
	`order` integer NOT NULL,
	`spec` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`service`, `name`),
	FOREIGN KEY (`service`) REFERENCES `services`(`name`) ON UPDATE no action ON DELETE cascade
);
