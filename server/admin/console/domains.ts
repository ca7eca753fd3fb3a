/**
 * The console's domains and mailboxes API. Reads show only the domains the
 * session's identity manages (all of them for the administrator:
 * AccessPolicy.manages); every change goes to the one writer as that
 * identity (writes.ts), so the directory's access policy decides it as it
 * decides an LDAP client's write, and the change log, routing and NOTIFY
 * follow as for any write.
 *
 *   GET    /api/domains                         the domains, with status, zone, serial, route
 *   POST   /api/domains {name, force?}          provision (Provisioner, one transaction; who may: mayProvision)
 *   GET    /api/domains/D                       one domain: its DNS records as served, serial, route, catch-all, users
 *   DELETE /api/domains/D                       remove (Provisioner.removeDomain; mayProvision)
 *   POST   /api/domains/D/hold | /release       mailDomainStatus hold / active
 *   POST   /api/domains/D/catchall {address}    mailDomainCatchallAddress ('' removes it)
 *   POST   /api/domains/D/users {uid, password, name?}   a mailbox uid@D below ou=people
 *   POST   /api/domains/D/users/U/password {password}
 *   POST   /api/domains/D/users/U/aliases {aliases: [...]}  mailAlternateAddress
 *   DELETE /api/domains/D/users/U
 */
import type { Identity } from '../../directory/access';
import type { Directory } from '../../directory/directory';
import { normalizeDomainName } from '../../directory/provision';
import type { MailDirectory, MailDomain } from '../../directory/mail';
import { formatRR } from '../../directory/records';
import { describeRoute, type RoutingTable } from '../../directory/routing';
import type { DirectoryWriter } from '../../directory/writes';
import type { Zones } from '../../directory/zones';
import { escapeDnValue, parseDn } from '../../../schema/dn';
import { field, HttpError } from './http-io';
import type { ApiHandler, ApiRoutes } from './index';

/** The domains API's dependencies. */
export interface DomainsOptions {
  directory: Directory;
  mail: MailDirectory;
  zones: Zones;
  routing: RoutingTable;
  writer: DirectoryWriter;
}

/** A uid the console creates mailboxes under: a plain local part (RFC 5321 §4.1.2 dot-string, conservatively). */
const UID = /^[a-z0-9](?:[a-z0-9._+-]{0,62}[a-z0-9])?$/i;

/** The domains API (see the module comment). */
export function domainRoutes(o: DomainsOptions): ApiRoutes {
  const { directory, mail, zones, routing, writer } = o;

  /** The domain named by the path, if `who` manages it (403 otherwise, whether or not it exists: nothing is told). */
  const managed = (who: Identity, raw: string): MailDomain => {
    let name: string;
    try {
      name = normalizeDomainName(raw);
    } catch {
      throw new HttpError(400, `'${raw}' is not a domain name`);
    }
    const d = mail.domain(name);
    if (who.admin) {
      if (!d) throw new HttpError(404, `${name} is not a mail domain here`);
      return d;
    }
    if (!d || !directory.access.manages(who, directory.domainAt(parseDn(d.dn)))) throw new HttpError(403, `you do not manage ${name}`);
    return d;
  };

  const mayProvision = (who: Identity) => {
    if (!directory.access.mayProvision(who)) throw new HttpError(403, 'only the administrator adds and removes domains');
  };

  const summary = (d: MailDomain) => {
    const zone = zones.zoneOf(d.name);
    const route = routing.lookup(d.name);
    return { name: d.name, status: d.status, zone: zone?.name ?? '', serial: zone?.soa.rdata.serial ?? null, route: route ? describeRoute(route) : '' };
  };

  const list: ApiHandler = async ({ session }) => {
    const who = session.identity;
    const names = who.admin ? [...mail.domains()].map((d) => d.name).sort() : mail.managedBy(who);
    return names.map((n) => mail.domain(n)).filter((d): d is MailDomain => !!d).map(summary);
  };

  const add: ApiHandler = async ({ session, body }) => {
    mayProvision(session.identity);
    const b = await body();
    return writer.execute({ kind: 'provisionDomain', name: field(b, 'name'), force: b.force === true });
  };

  const show: ApiHandler = async ({ session, parts }) => {
    const d = managed(session.identity, parts[1]);
    const zone = zones.zoneOf(d.name);
    const records = (zone ? zones.zoneRecords(zone.name) ?? [] : [])
      .filter((rr) => rr.name === d.name || rr.name.endsWith('.' + d.name))
      .map(formatRR);
    const users: { uid: string; dn: string; mail: string; aliases: string[] }[] = [];
    const base = directory.getByNdn(`ou=people,${d.ndn}`);
    if (base) {
      for (const e of directory.store.candidates({ base, scope: 'children', filter: { type: 'present', attr: directory.schema.objectClassType } })) {
        users.push({ uid: e.attrs.uid?.[0] ?? '', dn: e.dn, mail: e.attrs.mail?.[0] ?? '', aliases: e.attrs.mailAlternateAddress ?? [] });
      }
    }
    users.sort((a, b) => (a.mail < b.mail ? -1 : 1));
    return { ...summary(d), catchall: d.catchall ?? '', aliases: d.aliases, records, users };
  };

  const remove: ApiHandler = async ({ session, parts }) => {
    mayProvision(session.identity);
    const d = managed(session.identity, parts[1]);
    return writer.execute({ kind: 'removeDomain', name: d.name });
  };

  const status = (value: 'hold' | 'active'): ApiHandler => async ({ session, parts }) => {
    const d = managed(session.identity, parts[1]);
    return writer.execute({ kind: 'modify', who: session.identity, dn: d.dn, mods: [{ op: 'replace', type: 'mailDomainStatus', values: [value] }] });
  };

  const catchall: ApiHandler = async ({ session, parts, body }) => {
    const d = managed(session.identity, parts[1]);
    const address = field(await body(), 'address', true)?.trim();
    return writer.execute({
      kind: 'modify', who: session.identity, dn: d.dn,
      mods: [{ op: 'replace', type: 'mailDomainCatchallAddress', values: address ? [address] : [] }],
    });
  };

  /** The DN of mailbox `uid` of domain `d`. */
  const userDn = (d: MailDomain, uid: string) => {
    if (!UID.test(uid)) throw new HttpError(400, `'${uid}' is not a user name (letters, digits, . _ + -)`);
    return `uid=${escapeDnValue(uid)},ou=people,${d.dn}`;
  };

  const addUser: ApiHandler = async ({ session, parts, body }) => {
    const d = managed(session.identity, parts[1]);
    const b = await body();
    const uid = field(b, 'uid').trim().toLowerCase();
    const dn = userDn(d, uid);
    const name = field(b, 'name', true)?.trim() || uid;
    const r = await writer.execute({
      kind: 'add', who: session.identity, dn, attrs: [
        { type: 'objectClass', values: ['top', 'person', 'organizationalPerson', 'inetOrgPerson', 'inetLocalMailRecipient'] },
        { type: 'uid', values: [uid] },
        { type: 'cn', values: [name] },
        { type: 'sn', values: [name] },
        { type: 'mail', values: [`${uid}@${d.name}`] },
        { type: 'userPassword', values: [field(b, 'password')] },
      ],
    });
    return { dn, ...r };
  };

  const password: ApiHandler = async ({ session, parts, body }) => {
    const d = managed(session.identity, parts[1]);
    return writer.execute({ kind: 'setPassword', who: session.identity, dn: userDn(d, parts[3]), password: field(await body(), 'password') });
  };

  const aliases: ApiHandler = async ({ session, parts, body }) => {
    const d = managed(session.identity, parts[1]);
    const list = (await body()).aliases;
    if (!Array.isArray(list) || !list.every((a) => typeof a === 'string')) throw new HttpError(400, 'aliases must be a list of addresses');
    const values = [...new Set((list as string[]).map((a) => a.trim()).filter((a) => a !== ''))];
    return writer.execute({ kind: 'modify', who: session.identity, dn: userDn(d, parts[3]), mods: [{ op: 'replace', type: 'mailAlternateAddress', values }] });
  };

  const removeUser: ApiHandler = async ({ session, parts }) => {
    const d = managed(session.identity, parts[1]);
    return writer.execute({ kind: 'delete', who: session.identity, dn: userDn(d, parts[3]) });
  };

  const routes = new Map<string, ApiHandler>([
    ['GET ', list], ['POST ', add],
    ['GET D', show], ['DELETE D', remove],
    ['POST D/hold', status('hold')], ['POST D/release', status('active')], ['POST D/catchall', catchall],
    ['POST D/users', addUser], ['DELETE D/users/U', removeUser],
    ['POST D/users/U/password', password], ['POST D/users/U/aliases', aliases],
  ]);
  return {
    route(method: string, parts: readonly string[]): ApiHandler | undefined {
      if (parts[0] !== 'domains' || parts.length > 5) return undefined;
      const shape = ['', 'D', 'D/' + parts[2], 'D/users/U', 'D/users/U/' + parts[4]][parts.length - 1];
      if (parts.length >= 4 && parts[2] !== 'users') return undefined;
      return routes.get(`${method} ${shape}`);
    },
  };
}
