import { readFile } from 'node:fs/promises';

/** A document named by `-f`: a file, or standard input for `-`. */
export type FileResult = { ok: true; text: string; name: string } | { ok: false; error: string };

/** Reads `-f FILE` (or stdin for `-`); a file that cannot be read is a value naming it and why. */
export async function readDocument(file: string): Promise<FileResult> {
  try {
    if (file === '-') {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return { ok: true, text: Buffer.concat(chunks).toString('utf8'), name: 'standard input' };
    }
    return { ok: true, text: await readFile(file, 'utf8'), name: file };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, error: `cannot read ${file === '-' ? 'standard input' : file}: ${reason}` };
  }
}
