/**
 * Request controls (RFC 4511 §4.1.11): which we support, the critical-control
 * check every operation passes first, and the simple paged results control
 * (RFC 2696).
 */
import type { Handler } from './context';
import { RESULT_CODES } from './results';
import { children, encodeLdapResult, readTlv, tlv } from './ber';
import { decodeControls } from './search-decode';
import { REQUESTS } from './request-decode';

export const PAGED_RESULTS_OID = '1.2.840.113556.1.4.319';
export const MANAGE_DSA_IT_OID = '2.16.840.1.113730.3.4.2';

/** Controls we honour, announced in the root DSE. */
export const SUPPORTED_CONTROLS = [PAGED_RESULTS_OID, MANAGE_DSA_IT_OID];

/** Controls each operation understands; any other critical control fails with 12. */
const BY_OPERATION: Record<string, string[]> = {
  SearchRequest: [PAGED_RESULTS_OID, MANAGE_DSA_IT_OID],
  AddRequest: [MANAGE_DSA_IT_OID],
  ModifyRequest: [MANAGE_DSA_IT_OID],
  DeleteRequest: [MANAGE_DSA_IT_OID],
  ModifyDnRequest: [MANAGE_DSA_IT_OID],
  CompareRequest: [MANAGE_DSA_IT_OID],
};

/**
 * RFC 4511 §4.1.11: a critical control the server does not recognise, or
 * that is inappropriate for the operation, fails the operation with
 * unavailableCriticalExtension (12). Non-critical unknown controls are ignored.
 */
export const criticalControls: Handler = (req, res, next) => {
  const bad = unsupportedCritical(req.type, ((req.controls ?? []) as { type: string; criticality: boolean }[]).map((c) => ({ type: c.type, critical: c.criticality })));
  if (bad) {
    res.diagnosticMessage = `critical control ${bad} is not supported`;
    res.end(RESULT_CODES.unavailableCriticalExtension);
    return;
  }
  next();
};

/** The first critical control the operation does not support, if any. */
export function unsupportedCritical(operation: string, controls: { type: string; critical: boolean }[]): string | undefined {
  const known = BY_OPERATION[operation] ?? [];
  return controls.find((c) => c.critical && !known.includes(c.type))?.type;
}


/**
 * Screens the controls of a PDU bound for ldapjs (RFC 4511 §4.1.11): an
 * unsupported critical control gets unavailableCriticalExtension (12) here;
 * unsupported non-critical ones are removed, since the server ignores them
 * anyway and ldapjs's control parsers throw on some of them (a password
 * policy request control without a value, as SSSD and nslcd send with every
 * bind, dropped the connection). A PDU whose controls are all known comes
 * back as it was; a malformed one too (ldapjs refuses it as before).
 */
export function screenControls(pdu: Buffer): { pdu: Buffer } | { reply: Buffer } {
  try {
    const msg = readTlv(pdu, 0);
    const [id, op, ctl] = children(pdu, msg);
    if (!ctl || !op || id?.tag !== 0x02) return { pdu };
    const controls = decodeControls(pdu, ctl);
    const kind = REQUESTS[op.tag];
    if (!controls || !kind) return { pdu };
    const known = BY_OPERATION[kind.name] ?? [];
    const bad = kind.responseTag === undefined ? undefined : unsupportedCritical(kind.name, controls);
    if (bad) {
      const n = id.end - id.start;
      return { reply: encodeLdapResult(pdu.readIntBE(id.start, n), kind.responseTag!, RESULT_CODES.unavailableCriticalExtension, '', `critical control ${bad} is not supported`) };
    }
    if (controls.every((c) => known.includes(c.type))) return { pdu };
    const kept: Buffer[] = [];
    let from = ctl.start;
    children(pdu, ctl).forEach((c, i) => {
      if (known.includes(controls[i].type)) kept.push(pdu.subarray(from, c.end));
      from = c.end;
    });
    const body = [pdu.subarray(msg.start, op.end)];
    if (kept.length) body.push(tlv(0xa0, Buffer.concat(kept)));
    return { pdu: tlv(0x30, Buffer.concat(body)) };
  } catch {
    return { pdu };
  }
}
