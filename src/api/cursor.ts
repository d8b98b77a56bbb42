import { z } from 'zod';

/** `?after=<id>`: a poller's cursor into a log (events, audit), the `next` of its previous answer. */
export const cursorSchema = z
  .string()
  .regex(/^\d{1,15}$/, 'must be an entry id: a whole number, the "next" of a previous answer')
  .transform(Number);
