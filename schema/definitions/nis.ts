/**
 * The RFC 2307 "nis" schema, as OpenLDAP ships it (nis.schema, with
 * uidNumber and gidNumber, which OpenLDAP keeps in core.schema): POSIX
 * accounts, groups and shadow data, and the NIS maps (services, protocols,
 * RPC, hosts, networks, netgroups, generic maps, Ethernet and boot data).
 * The default templates of phpLDAPadmin and LDAP Account Manager, and the
 * NSS clients (sssd, nslcd), use posixAccount, shadowAccount and posixGroup.
 *
 * Where OpenLDAP's nis.schema departs from RFC 2307 it is followed, as the
 * clients are written against it: posixAccount and shadowAccount are
 * AUXILIARY (so they ride on inetOrgPerson or account), ipServiceProtocol and
 * nisMapName are subtypes of `name`, and memberUid, memberNisNetgroup and
 * nisMapEntry compare with caseExactIA5SubstringsMatch (OpenLDAP's
 * 1.3.6.1.4.1.4203.1.2.1, schema/matching.ts).
 *
 * nisNetgroupTriple and bootParameter have the RFC 2307 §2.4 syntaxes
 * (`(host,user,domain)`, `key=server:path`), checked no more strictly than
 * slapd checks them, and, as in RFC 2307, no equality rule. uidNumber and
 * gidNumber are defined as slapd defines them (built in, with an ORDERING
 * rule that nis.schema's commented-out copies lack).
 */
import type { SchemaModule } from '../types';

const integerAttr = (oid: string, name: string, desc?: string) => ({
  oid,
  names: [name],
  ...(desc ? { desc } : {}),
  equality: 'integerMatch' as const,
  syntax: 'integer' as const,
  singleValue: true,
});

export const nis: SchemaModule = {
  name: 'nis',
  attributeTypes: [
    {
      oid: '1.3.6.1.1.1.1.0',
      names: ['uidNumber'],
      desc: 'RFC2307: An integer uniquely identifying a user in an administrative domain',
      equality: 'integerMatch',
      ordering: 'integerOrderingMatch',
      syntax: 'integer',
      singleValue: true,
    },
    {
      oid: '1.3.6.1.1.1.1.1',
      names: ['gidNumber'],
      desc: 'RFC2307: An integer uniquely identifying a group in an administrative domain',
      equality: 'integerMatch',
      ordering: 'integerOrderingMatch',
      syntax: 'integer',
      singleValue: true,
    },
    {
      oid: '1.3.6.1.1.1.1.2',
      names: ['gecos'],
      desc: 'The GECOS field; the common name',
      equality: 'caseIgnoreIA5Match',
      substr: 'caseIgnoreIA5SubstringsMatch',
      syntax: 'ia5String',
      singleValue: true,
    },
    {
      oid: '1.3.6.1.1.1.1.3',
      names: ['homeDirectory'],
      desc: 'The absolute path to the home directory',
      equality: 'caseExactIA5Match',
      syntax: 'ia5String',
      singleValue: true,
    },
    {
      oid: '1.3.6.1.1.1.1.4',
      names: ['loginShell'],
      desc: 'The path to the login shell',
      equality: 'caseExactIA5Match',
      syntax: 'ia5String',
      singleValue: true,
    },
    integerAttr('1.3.6.1.1.1.1.5', 'shadowLastChange'),
    integerAttr('1.3.6.1.1.1.1.6', 'shadowMin'),
    integerAttr('1.3.6.1.1.1.1.7', 'shadowMax'),
    integerAttr('1.3.6.1.1.1.1.8', 'shadowWarning'),
    integerAttr('1.3.6.1.1.1.1.9', 'shadowInactive'),
    integerAttr('1.3.6.1.1.1.1.10', 'shadowExpire'),
    integerAttr('1.3.6.1.1.1.1.11', 'shadowFlag'),
    {
      oid: '1.3.6.1.1.1.1.12',
      names: ['memberUid'],
      equality: 'caseExactIA5Match',
      substr: 'caseExactIA5SubstringsMatch',
      syntax: 'ia5String',
    },
    {
      oid: '1.3.6.1.1.1.1.13',
      names: ['memberNisNetgroup'],
      equality: 'caseExactIA5Match',
      substr: 'caseExactIA5SubstringsMatch',
      syntax: 'ia5String',
    },
    {
      oid: '1.3.6.1.1.1.1.14',
      names: ['nisNetgroupTriple'],
      desc: 'Netgroup triple',
      syntax: 'nisNetgroupTriple',
    },
    integerAttr('1.3.6.1.1.1.1.15', 'ipServicePort'),
    {
      oid: '1.3.6.1.1.1.1.16',
      names: ['ipServiceProtocol'],
      sup: 'name',
    },
    integerAttr('1.3.6.1.1.1.1.17', 'ipProtocolNumber'),
    integerAttr('1.3.6.1.1.1.1.18', 'oncRpcNumber'),
    {
      oid: '1.3.6.1.1.1.1.19',
      names: ['ipHostNumber'],
      desc: 'IP address',
      equality: 'caseIgnoreIA5Match',
      syntax: 'ia5String',
      syntaxLen: 128,
    },
    {
      oid: '1.3.6.1.1.1.1.20',
      names: ['ipNetworkNumber'],
      desc: 'IP network',
      equality: 'caseIgnoreIA5Match',
      syntax: 'ia5String',
      syntaxLen: 128,
      singleValue: true,
    },
    {
      oid: '1.3.6.1.1.1.1.21',
      names: ['ipNetmaskNumber'],
      desc: 'IP netmask',
      equality: 'caseIgnoreIA5Match',
      syntax: 'ia5String',
      syntaxLen: 128,
      singleValue: true,
    },
    {
      oid: '1.3.6.1.1.1.1.22',
      names: ['macAddress'],
      desc: 'MAC address',
      equality: 'caseIgnoreIA5Match',
      syntax: 'ia5String',
      syntaxLen: 128,
    },
    {
      oid: '1.3.6.1.1.1.1.23',
      names: ['bootParameter'],
      desc: 'rpc.bootparamd parameter',
      syntax: 'bootParameter',
    },
    {
      oid: '1.3.6.1.1.1.1.24',
      names: ['bootFile'],
      desc: 'Boot image name',
      equality: 'caseExactIA5Match',
      syntax: 'ia5String',
    },
    {
      oid: '1.3.6.1.1.1.1.26',
      names: ['nisMapName'],
      sup: 'name',
    },
    {
      oid: '1.3.6.1.1.1.1.27',
      names: ['nisMapEntry'],
      equality: 'caseExactIA5Match',
      substr: 'caseExactIA5SubstringsMatch',
      syntax: 'ia5String',
      syntaxLen: 1024,
      singleValue: true,
    },
  ],

  objectClasses: [
    {
      oid: '1.3.6.1.1.1.2.0',
      names: ['posixAccount'],
      desc: 'Abstraction of an account with POSIX attributes',
      sup: ['top'],
      kind: 'auxiliary',
      must: ['cn', 'uid', 'uidNumber', 'gidNumber', 'homeDirectory'],
      may: ['userPassword', 'loginShell', 'gecos', 'description'],
    },
    {
      oid: '1.3.6.1.1.1.2.1',
      names: ['shadowAccount'],
      desc: 'Additional attributes for shadow passwords',
      sup: ['top'],
      kind: 'auxiliary',
      must: ['uid'],
      may: [
        'userPassword', 'shadowLastChange', 'shadowMin', 'shadowMax', 'shadowWarning',
        'shadowInactive', 'shadowExpire', 'shadowFlag', 'description',
      ],
    },
    {
      oid: '1.3.6.1.1.1.2.2',
      names: ['posixGroup'],
      desc: 'Abstraction of a group of accounts',
      sup: ['top'],
      kind: 'structural',
      must: ['cn', 'gidNumber'],
      may: ['userPassword', 'memberUid', 'description'],
    },
    {
      oid: '1.3.6.1.1.1.2.3',
      names: ['ipService'],
      desc: 'Abstraction an Internet Protocol service',
      sup: ['top'],
      kind: 'structural',
      must: ['cn', 'ipServicePort', 'ipServiceProtocol'],
      may: ['description'],
    },
    {
      oid: '1.3.6.1.1.1.2.4',
      names: ['ipProtocol'],
      desc: 'Abstraction of an IP protocol',
      sup: ['top'],
      kind: 'structural',
      must: ['cn', 'ipProtocolNumber', 'description'],
      may: ['description'],
    },
    {
      oid: '1.3.6.1.1.1.2.5',
      names: ['oncRpc'],
      desc: 'Abstraction of an ONC/RPC binding',
      sup: ['top'],
      kind: 'structural',
      must: ['cn', 'oncRpcNumber', 'description'],
      may: ['description'],
    },
    {
      oid: '1.3.6.1.1.1.2.6',
      names: ['ipHost'],
      desc: 'Abstraction of a host, an IP device',
      sup: ['top'],
      kind: 'auxiliary',
      must: ['cn', 'ipHostNumber'],
      may: ['l', 'description', 'manager'],
    },
    {
      oid: '1.3.6.1.1.1.2.7',
      names: ['ipNetwork'],
      desc: 'Abstraction of an IP network',
      sup: ['top'],
      kind: 'structural',
      must: ['cn', 'ipNetworkNumber'],
      may: ['ipNetmaskNumber', 'l', 'description', 'manager'],
    },
    {
      oid: '1.3.6.1.1.1.2.8',
      names: ['nisNetgroup'],
      desc: 'Abstraction of a netgroup',
      sup: ['top'],
      kind: 'structural',
      must: ['cn'],
      may: ['nisNetgroupTriple', 'memberNisNetgroup', 'description'],
    },
    {
      oid: '1.3.6.1.1.1.2.9',
      names: ['nisMap'],
      desc: 'A generic abstraction of a NIS map',
      sup: ['top'],
      kind: 'structural',
      must: ['nisMapName'],
      may: ['description'],
    },
    {
      oid: '1.3.6.1.1.1.2.10',
      names: ['nisObject'],
      desc: 'An entry in a NIS map',
      sup: ['top'],
      kind: 'structural',
      must: ['cn', 'nisMapEntry', 'nisMapName'],
      may: ['description'],
    },
    {
      oid: '1.3.6.1.1.1.2.11',
      names: ['ieee802Device'],
      desc: 'A device with a MAC address',
      sup: ['top'],
      kind: 'auxiliary',
      may: ['macAddress'],
    },
    {
      oid: '1.3.6.1.1.1.2.12',
      names: ['bootableDevice'],
      desc: 'A device with boot parameters',
      sup: ['top'],
      kind: 'auxiliary',
      may: ['bootFile', 'bootParameter'],
    },
  ],
};
