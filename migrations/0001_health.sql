CREATE TABLE `cluster_health` (
	`service` text NOT NULL,
	`cluster` text NOT NULL,
	`state` text NOT NULL,
	`consecutive_successes` integer DEFAULT 0 NOT NULL,
	`consecutive_failures` integer DEFAULT 0 NOT NULL,
	`last_probe_at` integer,
	`last_status` integer,
	`last_latency_ms` real,
	`last_error` text,
	`reason` text,
	`changed_at` integer NOT NULL,
	PRIMARY KEY(`service`, `cluster`)
);
--> statement-breakpoint
CREATE TABLE `edge_reports` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` integer NOT NULL,
	`instance` text NOT NULL,
	`service` text NOT NULL,
	`cluster` text NOT NULL,
	`client_region` text NOT NULL,
	`requests` integer NOT NULL,
	`failures` integer NOT NULL,
	`latency_ms_sum` real NOT NULL
);
--> statement-breakpoint
CREATE INDEX `edge_reports_at` ON `edge_reports` (`at`);--> statement-breakpoint
CREATE TABLE `events` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` integer NOT NULL,
	`service` text NOT NULL,
	`cluster` text,
	`kind` text NOT NULL,
	`message` text NOT NULL,
	`detail` text
);
--> statement-breakpoint
CREATE INDEX `events_service` ON `events` (`service`,`id`);--> statement-breakpoint
CREATE TABLE `overrides` (
	`id` text PRIMARY KEY NOT NULL,
	`service` text NOT NULL,
	`action` text NOT NULL,
	`cluster` text,
	`region` text,
	`reason` text NOT NULL,
	`actor` text NOT NULL,
	`forced` integer DEFAULT false NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`ended_at` integer,
	`ended_by` text,
	`end_reason` text
);
--> statement-breakpoint
CREATE INDEX `overrides_active` ON `overrides` (`ended_at`,`expires_at`);--> statement-breakpoint
CREATE TABLE `sync_state` (
	`id` integer PRIMARY KEY NOT NULL,
	`last_run_at` integer NOT NULL,
	`last_report_id` integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE `services` ADD `policy` text DEFAULT '{}' NOT NULL;