/**
 * The part of an appliance's environment that tests and benchmarks share:
 * one data dir, loopback only, every port ephemeral (the `dcmx ready` line
 * says which ones it got). No side effects, so bench/ can import it too.
 */
export function loopbackEnv(dataDir: string): Record<string, string> {
  return {
    DCMX_DATA_DIR: dataDir,
    DCMX_LISTEN: '127.0.0.1',
    DCMX_LDAP_PORT: '0',
    DCMX_DNS_PORT: '0',
    DCMX_SMTP_PORT: '0',
    DCMX_HTTP_PORT: '0',
  };
}
