/**
 * Argument handling the `dcmx` commands share (cli.ts, queue-cli.ts).
 */

/** Thrown for a usage error: printed with the usage text, exit status 64 (EX_USAGE). */
export class UsageError extends Error {}

/** Takes the flag `name` out of `args`; true when it was there. */
export function flag(args: string[], name: string): boolean {
  const i = args.indexOf(name);
  if (i < 0) return false;
  args.splice(i, 1);
  return true;
}

/** Takes `name VALUE` out of `args`; the value, or undefined when absent. Throws UsageError when the value is missing. */
export function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined) throw new UsageError(`${name} needs a value`);
  args.splice(i, 2);
  return v;
}
