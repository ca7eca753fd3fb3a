/**
 * Request controls (RFC 4511 §4.1.11): which we support, the critical-control
 * check every operation passes first, and the simple paged results control
 * (RFC 2696).
 */
import type { Handler } from './context';
import { RESULT_CODES } from './results';

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
