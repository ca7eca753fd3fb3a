/** Add (RFC 4511 §4.7). */
import type { Handler, LdapContext } from './context';
import { sessionOf } from './session';
import { endWithError, RESULT_CODES } from './results';
import { valueFromBytes } from '../directory/entry';

export function addHandler(ctx: LdapContext): Handler {
  return (req, res) => {
    const session = sessionOf(req);
    const attrs = (req.attributes as { type: string; buffers: Buffer[] }[]).map((a) => ({
      type: a.type,
      values: a.buffers.map(valueFromBytes),
    }));
    ctx.directory.add(session.identity, String(req.entry), attrs).then(
      () => res.end(RESULT_CODES.success),
      (err) => endWithError(res, err, session.log),
    );
  };
}
