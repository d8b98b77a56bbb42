import { z } from 'zod';
import { ZONE_NAME } from '../routing/zone.js';

/** Names of services and clusters: DNS-label style, so they are safe in URLs, headers and logs. */
export const nameSchema = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'must be 1-63 lowercase letters, digits or dashes, starting and ending with a letter or digit',
  );

export const regionSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a region name like "eu-west1"');

/** Istio's `zone` or `zone/subzone` inside a region. */
export const zoneSchema = z.string().regex(ZONE_NAME, 'must be a zone name like "us-east1-b", or "zone/subzone"');

/** Lowercase DNS labels joined by dots, 253 characters at most. */
export const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** A host a service answers for, stored lowercase. */
export const hostnameSchema = z
  .string()
  .transform((h) => h.toLowerCase())
  .pipe(z.string().max(253).regex(HOSTNAME, 'must be a hostname like "shop.example.com" (no scheme, port or path)'));

const labelKeySchema = z
  .string()
  .regex(/^[a-zA-Z0-9]([a-zA-Z0-9._/-]{0,62})$/, 'label keys are 1-63 letters, digits, ".", "_", "/" or "-"');

/** Cluster labels, and the label selectors that pick clusters by them. */
export const labelsSchema = z.record(labelKeySchema, z.string().max(253));

/** A service subset's name: a DNS-1123 label, as Istio requires of DestinationRule subset names. */
export const subsetNameSchema = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'must be a subset name: 1-63 lowercase letters, digits or dashes, starting and ending with a letter or digit (like "v1")',
  );
