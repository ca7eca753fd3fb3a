/**
 * Request controls (RFC 4511 §4.1.11): which we support, and the
 * critical-control check the connection makes before any operation with a
 * response is handled (connection.ts). The simple paged results control
 * (RFC 2696) is read by search.ts, the Sync Request control (RFC 4533) by
 * sync.ts.
 */
import { SYNC_REQUEST_OID } from '../ldap-framing';

export const PAGED_RESULTS_OID = '1.2.840.113556.1.4.319';
export const MANAGE_DSA_IT_OID = '2.16.840.1.113730.3.4.2';
/** RFC 4533 §2.2: the Sync Request control (Content Sync, sync.ts). */
export { SYNC_REQUEST_OID };

/** Controls we honour, announced in the root DSE. */
export const SUPPORTED_CONTROLS = [PAGED_RESULTS_OID, MANAGE_DSA_IT_OID, SYNC_REQUEST_OID];

/** Controls each operation understands (by its name in request-decode.ts's REQUESTS); any other critical control fails with 12. */
const BY_OPERATION: Record<string, string[]> = {
  SearchRequest: [PAGED_RESULTS_OID, MANAGE_DSA_IT_OID, SYNC_REQUEST_OID],
  AddRequest: [MANAGE_DSA_IT_OID],
  ModifyRequest: [MANAGE_DSA_IT_OID],
  DeleteRequest: [MANAGE_DSA_IT_OID],
  ModifyDnRequest: [MANAGE_DSA_IT_OID],
  CompareRequest: [MANAGE_DSA_IT_OID],
};

/**
 * RFC 4511 §4.1.11: a critical control the server does not recognise, or
 * that is inappropriate for the operation, fails the operation with
 * unavailableCriticalExtension (12); non-critical unknown controls are
 * ignored. Returns the first critical control `operation` does not support, if any.
 */
export function unsupportedCritical(operation: string, controls: readonly { type: string; critical: boolean }[]): string | undefined {
  const known = BY_OPERATION[operation] ?? [];
  return controls.find((c) => c.critical && !known.includes(c.type))?.type;
}
