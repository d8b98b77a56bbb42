CREATE TABLE `api_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`hash` text NOT NULL,
	`scopes` text NOT NULL,
	`services` text,
	`created_at` integer NOT NULL,
	`created_by` text NOT NULL,
	`expires_at` integer,
	`revoked_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_tokens_hash_unique` ON `api_tokens` (`hash`);--> statement-breakpoint
CREATE TABLE `config_changes` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`version` integer NOT NULL,
	`kind` text NOT NULL,
	`service` text NOT NULL,
	`name` text NOT NULL,
	`before` text,
	`after` text,
	FOREIGN KEY (`version`) REFERENCES `config_versions`(`version`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `config_changes_version` ON `config_changes` (`version`);--> statement-breakpoint
CREATE TABLE `config_versions` (
	`version` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`at` integer NOT NULL,
	`actor` text NOT NULL,
	`request_id` text,
	`message` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `config_versions_at` ON `config_versions` (`at`);