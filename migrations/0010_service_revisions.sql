CREATE TABLE `service_removals` (
	`name` text NOT NULL,
	`revision` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `service_removals_revision` ON `service_removals` (`revision`);--> statement-breakpoint
ALTER TABLE `services` ADD `revision` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX `services_revision` ON `services` (`revision`);--> statement-breakpoint
-- Each service's revision is kept by triggers, so that no write can forget it: any change to what routing
-- reads about a service marks it with the revision its transaction is about to commit (or one later, which
-- only makes a partial reload read it once more). Written by hand: drizzle-kit does not model triggers.
-- cluster_health and route_state also hold the health sync's counters and bookmarks, which routing does
-- not read: only changes to the columns it reads mark the service.
CREATE TRIGGER `service_hosts_marks_insert` AFTER INSERT ON `service_hosts` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = NEW.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `service_hosts_marks_update` AFTER UPDATE ON `service_hosts` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = OLD.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `service_hosts_marks_delete` AFTER DELETE ON `service_hosts` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = OLD.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `clusters_marks_insert` AFTER INSERT ON `clusters` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = NEW.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `clusters_marks_update` AFTER UPDATE ON `clusters` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = OLD.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `clusters_marks_delete` AFTER DELETE ON `clusters` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = OLD.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `cluster_health_marks_insert` AFTER INSERT ON `cluster_health` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = NEW.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `cluster_health_marks_update` AFTER UPDATE ON `cluster_health` WHEN NEW.`state` IS NOT OLD.`state` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = OLD.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `cluster_health_marks_delete` AFTER DELETE ON `cluster_health` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = OLD.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `overrides_marks_insert` AFTER INSERT ON `overrides` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = NEW.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `overrides_marks_update` AFTER UPDATE ON `overrides` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = OLD.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `overrides_marks_delete` AFTER DELETE ON `overrides` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = OLD.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `routes_marks_insert` AFTER INSERT ON `routes` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = NEW.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `routes_marks_update` AFTER UPDATE ON `routes` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = OLD.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `routes_marks_delete` AFTER DELETE ON `routes` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = OLD.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `route_state_marks_insert` AFTER INSERT ON `route_state` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = NEW.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `route_state_marks_update` AFTER UPDATE ON `route_state` WHEN NEW.`mirror_percent` IS NOT OLD.`mirror_percent` OR NEW.`canary_weight` IS NOT OLD.`canary_weight` OR NEW.`phase` IS NOT OLD.`phase` OR NEW.`paused` IS NOT OLD.`paused` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = OLD.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `route_state_marks_delete` AFTER DELETE ON `route_state` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = OLD.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `latency_orders_marks_insert` AFTER INSERT ON `latency_orders` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = NEW.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `latency_orders_marks_update` AFTER UPDATE ON `latency_orders` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = OLD.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `latency_orders_marks_delete` AFTER DELETE ON `latency_orders` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = OLD.`service`;
END;
--> statement-breakpoint
CREATE TRIGGER `services_marks_insert` AFTER INSERT ON `services` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = NEW.`name`;
END;--> statement-breakpoint
CREATE TRIGGER `services_marks_update` AFTER UPDATE ON `services` WHEN NEW.`revision` IS OLD.`revision` BEGIN
  UPDATE `services` SET `revision` = (SELECT coalesce(max(version), 0) + 1 FROM revision) WHERE `name` = NEW.`name`;
END;--> statement-breakpoint
CREATE TRIGGER `services_marks_delete` AFTER DELETE ON `services` BEGIN
  INSERT INTO `service_removals` (`name`, `revision`) VALUES (OLD.`name`, (SELECT coalesce(max(version), 0) + 1 FROM revision));
END;
