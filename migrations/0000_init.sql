CREATE TABLE `audit_log` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` integer NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`target` text NOT NULL,
	`before` text,
	`after` text,
	`request_id` text
);
--> statement-breakpoint
CREATE INDEX `audit_log_target` ON `audit_log` (`target`,`at`);--> statement-breakpoint
CREATE TABLE `clusters` (
	`service` text NOT NULL,
	`name` text NOT NULL,
	`region` text NOT NULL,
	`origin` text NOT NULL,
	`latitude` real NOT NULL,
	`longitude` real NOT NULL,
	`weight` integer DEFAULT 100 NOT NULL,
	`labels` text DEFAULT '{}' NOT NULL,
	`health_check` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`service`, `name`),
	FOREIGN KEY (`service`) REFERENCES `services`(`name`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `revision` (
	`id` integer PRIMARY KEY NOT NULL,
	`version` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `service_hosts` (
	`host` text PRIMARY KEY NOT NULL,
	`service` text NOT NULL,
	FOREIGN KEY (`service`) REFERENCES `services`(`name`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `service_hosts_service` ON `service_hosts` (`service`);--> statement-breakpoint
CREATE TABLE `services` (
	`name` text PRIMARY KEY NOT NULL,
	`failover` text DEFAULT '[]' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
