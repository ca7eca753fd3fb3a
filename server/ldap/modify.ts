/** Modify (RFC 4511 §4.6), including Modify-Increment (RFC 4525). */
import type { Handler, LdapContext } from './context';
import { sessionOf } from './session';
import { endWithError, RESULT_CODES } from './results';
import { valueFromBytes } from '../directory/entry';
import type { Modification } from '../directory/directory';

export function modifyHandler(ctx: LdapContext): Handler {
  return (req, res) => {
    const session = sessionOf(req);
    const mods: Modification[] = (req.changes as { operation: Modification['op']; modification: { type: string; buffers: Buffer[] } }[]).map(
      (c) => ({ op: c.operation, type: c.modification.type, values: c.modification.buffers.map(valueFromBytes) }),
    );
    ctx.directory.modify(session.identity, String(req.object), mods).then(
      () => res.end(RESULT_CODES.success),
      (err) => endWithError(res, err, session.log),
    );
  };
}
