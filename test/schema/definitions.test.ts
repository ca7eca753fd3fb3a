/**
 * Self-check of the schema definitions as data (schema/definitions): unique
 * OIDs and names, every reference resolvable, the classes dcmx relies on
 * present with the right kind and superclass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allModules } from '../../schema/definitions';
import type { AttributeTypeDef, ObjectClassDef } from '../../schema/types';

const attrs: AttributeTypeDef[] = allModules.flatMap((m) => m.attributeTypes);
const classes: ObjectClassDef[] = allModules.flatMap((m) => m.objectClasses);

function index<T extends { oid: string; names: string[] }>(defs: T[]): Map<string, T> {
  const m = new Map<string, T>();
  for (const d of defs) for (const k of [d.oid, ...d.names]) m.set(k.toLowerCase(), d);
  return m;
}
const atByKey = index(attrs);
const ocByKey = index(classes);

function oc(name: string): ObjectClassDef {
  const d = ocByKey.get(name.toLowerCase());
  assert.ok(d, `object class ${name} is defined`);
  return d;
}
function at(name: string): AttributeTypeDef {
  const d = atByKey.get(name.toLowerCase());
  assert.ok(d, `attribute type ${name} is defined`);
  return d;
}

test('module names are unique and every module is non-trivial or dcmx', () => {
  const names = allModules.map((m) => m.name);
  assert.equal(new Set(names).size, names.length);
  for (const m of allModules) {
    if (m.name !== 'dcmx') assert.ok(m.attributeTypes.length + m.objectClasses.length > 0, m.name);
  }
});

test('no duplicate OIDs across all modules', () => {
  const seen = new Map<string, string>();
  for (const m of allModules) {
    for (const d of [...m.attributeTypes, ...m.objectClasses]) {
      const prev = seen.get(d.oid);
      assert.equal(prev, undefined, `OID ${d.oid} (${d.names[0]}, ${m.name}) already used by ${prev}`);
      seen.set(d.oid, `${d.names[0]} (${m.name})`);
    }
  }
});

test('no duplicate names (case-insensitive) across all modules, attribute types and classes together', () => {
  const seen = new Map<string, string>();
  for (const m of allModules) {
    for (const d of [...m.attributeTypes, ...m.objectClasses]) {
      for (const n of d.names) {
        const k = n.toLowerCase();
        const prev = seen.get(k);
        assert.equal(prev, undefined, `name ${n} (${d.oid}, ${m.name}) already used by ${prev}`);
        seen.set(k, `${d.oid} (${m.name})`);
      }
    }
  }
});

test('OIDs are numeric and names are descriptors', () => {
  for (const d of [...attrs, ...classes]) {
    assert.match(d.oid, /^[0-2](\.(0|[1-9][0-9]*))+$/, `${d.names[0]}: OID ${d.oid}`);
    assert.ok(d.names.length > 0, `${d.oid} has a name`);
    for (const n of d.names) assert.match(n, /^[A-Za-z][A-Za-z0-9-]*$/, `${d.oid}: name ${n}`);
  }
});

test('our own arc: only 1.3.6.1.4.1.32473.1.{1,2,3}.n, never 99999', () => {
  for (const d of [...attrs, ...classes]) {
    assert.ok(!d.oid.startsWith('1.3.6.1.4.1.99999.'), `${d.names[0]} uses 99999`);
    if (d.oid.startsWith('1.3.6.1.4.1.32473.')) {
      assert.match(d.oid, /^1\.3\.6\.1\.4\.1\.32473\.1\.[123]\.[1-9][0-9]*$/, `${d.names[0]}: ${d.oid}`);
    }
  }
  for (const d of attrs) assert.ok(!d.oid.startsWith('1.3.6.1.4.1.32473.1.2.'), `attribute ${d.names[0]} in the class arc`);
  for (const d of classes) assert.ok(!d.oid.startsWith('1.3.6.1.4.1.32473.1.1.'), `class ${d.names[0]} in the attribute arc`);
});

test('every attribute SUP resolves, chains are acyclic, and every type has a syntax', () => {
  for (const d of attrs) {
    const chain = new Set<AttributeTypeDef>();
    let syntax = d.syntax;
    for (let cur: AttributeTypeDef | undefined = d; cur; ) {
      assert.ok(!chain.has(cur), `SUP cycle at ${d.names[0]}`);
      chain.add(cur);
      syntax ??= cur.syntax;
      if (!cur.sup) break;
      const next = atByKey.get(cur.sup.toLowerCase());
      assert.ok(next, `${cur.names[0]}: SUP ${cur.sup} is defined`);
      cur = next;
    }
    assert.ok(syntax, `${d.names[0]} has a syntax (own or inherited)`);
    if (d.sup) {
      const s = at(d.sup);
      assert.equal(s.usage ?? 'userApplications', d.usage ?? 'userApplications', `${d.names[0]} has its SUP's usage`);
    }
  }
});

test('operational types are flagged as the RFCs say', () => {
  for (const n of ['createTimestamp', 'modifyTimestamp', 'creatorsName', 'modifiersName', 'structuralObjectClass',
    'subschemaSubentry', 'entryUUID', 'entryDN', 'hasSubordinates']) {
    const d = at(n);
    assert.equal(d.usage, 'directoryOperation', n);
    assert.equal(d.noUserModification, true, n);
    assert.equal(d.singleValue, true, n);
  }
  for (const n of ['namingContexts', 'supportedControl', 'supportedExtension', 'supportedFeatures',
    'supportedLDAPVersion', 'supportedSASLMechanisms', 'altServer', 'vendorName', 'vendorVersion']) {
    assert.equal(at(n).usage, 'dSAOperation', n);
  }
  for (const n of ['attributeTypes', 'objectClasses', 'matchingRules', 'ldapSyntaxes']) {
    assert.equal(at(n).usage, 'directoryOperation', n);
  }
  // noUserModification only on operational types (RFC 4512 §4.1.2).
  for (const d of attrs) {
    if (d.noUserModification) assert.notEqual(d.usage ?? 'userApplications', 'userApplications', d.names[0]);
  }
  const entryUUID = at('entryUUID');
  assert.equal(entryUUID.equality, 'uuidMatch');
  assert.equal(entryUUID.syntax, 'uuid');
});

test('every class MUST/MAY/SUP reference resolves, SUP chains are acyclic and reach top', () => {
  for (const d of classes) {
    for (const a of [...(d.must ?? []), ...(d.may ?? [])]) {
      assert.ok(atByKey.has(a.toLowerCase()), `class ${d.names[0]} names unknown attribute ${a}`);
    }
    for (const s of d.sup ?? []) assert.ok(ocByKey.has(s.toLowerCase()), `class ${d.names[0]}: SUP ${s} is defined`);

    const seen = new Set<ObjectClassDef>();
    const walk = (c: ObjectClassDef, path: ObjectClassDef[]): boolean => {
      assert.ok(!path.includes(c), `class SUP cycle at ${d.names[0]}`);
      seen.add(c);
      if (c.names[0] === 'top') return true;
      let reached = false;
      for (const s of c.sup ?? []) reached = walk(oc(s), [...path, c]) || reached;
      return reached;
    };
    assert.ok(walk(d, []), `class ${d.names[0]} reaches top`);
  }
});

test('class kinds are consistent with their superclasses (RFC 4512 §2.4)', () => {
  for (const d of classes) {
    for (const s of d.sup ?? []) {
      const sup = oc(s);
      if (d.kind === 'structural') assert.notEqual(sup.kind, 'auxiliary', `structural ${d.names[0]} SUP auxiliary ${s}`);
      if (d.kind === 'auxiliary') assert.notEqual(sup.kind, 'structural', `auxiliary ${d.names[0]} SUP structural ${s}`);
      if (d.kind === 'abstract') assert.equal(sup.kind, 'abstract', `abstract ${d.names[0]} SUP ${s}`);
    }
  }
  assert.equal(oc('top').kind, 'abstract');
  assert.deepEqual(oc('top').must, ['objectClass']);
});

test('the classes dcmx relies on exist with the right kind and superclass', () => {
  const expect = (name: string, kind: ObjectClassDef['kind'], sup?: string) => {
    const d = oc(name);
    assert.equal(d.names[0], name, `${name} canonical spelling`);
    assert.equal(d.kind, kind, `${name} kind`);
    if (sup) assert.deepEqual((d.sup ?? []).map((s) => s.toLowerCase()), [sup.toLowerCase()], `${name} SUP`);
  };
  expect('domain', 'structural', 'top');
  expect('dNSDomain', 'structural', 'domain');
  expect('dNSDomain2', 'structural', 'dNSDomain');
  expect('inetDomain', 'auxiliary');
  expect('mailDomain', 'auxiliary');
  expect('mailRecipient', 'auxiliary');
  expect('inetMailUser', 'auxiliary');
  expect('inetUser', 'auxiliary');
  expect('inetLocalMailRecipient', 'auxiliary');
  expect('dcObject', 'auxiliary');
  expect('domainRelatedObject', 'auxiliary');
  expect('simpleSecurityObject', 'auxiliary');
  expect('extensibleObject', 'auxiliary');
  expect('subschema', 'auxiliary');
  expect('alias', 'structural', 'top');
  expect('inetOrgPerson', 'structural', 'organizationalPerson');
  expect('organizationalPerson', 'structural', 'person');
  expect('changeLogEntry', 'structural', 'top');
  for (const n of ['country', 'locality', 'organization', 'organizationalUnit', 'person', 'organizationalRole',
    'residentialPerson', 'applicationProcess', 'device', 'groupOfNames', 'groupOfUniqueNames', 'account',
    'document', 'room', 'documentSeries', 'friendlyCountry', 'pilotPerson']) {
    assert.equal(oc(n).kind, 'structural', n);
  }
  expect('uidObject', 'auxiliary');
  assert.deepEqual(oc('dcObject').must, ['dc']);
  assert.deepEqual(oc('domain').must, ['dc']);
  assert.deepEqual(oc('changeLogEntry').must, ['changeNumber', 'targetDN', 'changeType']);
});

test('well-known OIDs and attribute details', () => {
  const oids: Record<string, string> = {
    objectClass: '2.5.4.0',
    cn: '2.5.4.3',
    dc: '0.9.2342.19200300.100.1.25',
    uid: '0.9.2342.19200300.100.1.1',
    mail: '0.9.2342.19200300.100.1.3',
    userPassword: '2.5.4.35',
    entryUUID: '1.3.6.1.1.16.4',
    entryDN: '1.3.6.1.1.20',
    aRecord: '0.9.2342.19200300.100.1.26',
    mXRecord: '0.9.2342.19200300.100.1.28',
    cNAMERecord: '0.9.2342.19200300.100.1.31',
    dNSTTL: '1.3.6.1.4.1.2428.20.0.0',
    aAAARecord: '1.3.6.1.4.1.2428.20.1.28',
    sRVRecord: '1.3.6.1.4.1.2428.20.1.33',
    tXTRecord: '1.3.6.1.4.1.2428.20.1.16',
    cAARecord: '1.3.6.1.4.1.2428.20.1.257',
    changeNumber: '2.16.840.1.113730.3.1.5',
    changeTime: '2.16.840.1.113730.3.1.77',
    mailAlternateAddress: '2.16.840.1.113730.3.1.13',
    mailHost: '2.16.840.1.113730.3.1.18',
    mailRoutingAddress: '2.16.840.1.113730.3.1.24',
    mailDeliveryOption: '2.16.840.1.113730.3.1.16',
    mailForwardingAddress: '2.16.840.1.113730.3.1.17',
    inetDomainBaseDN: '2.16.840.1.113730.3.1.690',
  };
  for (const [n, oid] of Object.entries(oids)) assert.equal(at(n).oid, oid, n);
  const ocOids: Record<string, string> = {
    dNSDomain: '0.9.2342.19200300.100.4.15',
    dNSDomain2: '1.3.6.1.4.1.2428.20.2',
    changeLogEntry: '2.16.840.1.113730.3.2.1',
    inetOrgPerson: '2.16.840.1.113730.3.2.2',
    mailRecipient: '2.16.840.1.113730.3.2.3',
    inetDomain: '2.16.840.1.113730.3.2.129',
    inetUser: '2.16.840.1.113730.3.2.130',
    inetMailUser: '2.16.840.1.113730.3.2.146',
    inetLocalMailRecipient: '2.16.840.1.113730.3.2.147',
  };
  for (const [n, oid] of Object.entries(ocOids)) assert.equal(oc(n).oid, oid, n);

  assert.deepEqual(at('dc').names, ['dc', 'domainComponent']);
  assert.equal(at('dc').singleValue, true);
  assert.equal(at('dc').equality, 'caseIgnoreIA5Match');
  assert.deepEqual(at('mail').names, ['mail', 'rfc822Mailbox']);
  assert.equal(at('mail').substr, 'caseIgnoreIA5SubstringsMatch');
  assert.equal(at('userPassword').equality, 'octetStringMatch');
  assert.equal(at('userPassword').syntax, 'octetString');
  assert.equal(at('cn').sup, 'name');
  assert.equal(at('mailLocalAddress'), at('mailAlternateAddress'));
  for (const n of ['aRecord', 'mDRecord', 'mXRecord', 'nSRecord', 'sOARecord', 'cNAMERecord']) {
    assert.equal(at(n).equality, 'caseIgnoreIA5Match', n);
    assert.equal(at(n).syntax, 'ia5String', n);
  }
  // dNSDomain2 allows every record attribute of the PowerDNS schema.
  const may = new Set((oc('dNSDomain2').may ?? []).map((n) => n.toLowerCase()));
  for (const n of ['dNSTTL', 'dNSClass', 'pTRRecord', 'tXTRecord', 'aAAARecord', 'sRVRecord', 'nAPTRRecord',
    'dSRecord', 'sSHFPRecord', 'tLSARecord', 'cAARecord', 'sPFRecord', 'dNSKeyRecord', 'rRSIGRecord']) {
    assert.ok(may.has(n.toLowerCase()), `dNSDomain2 MAY ${n}`);
  }
});

test('each attribute type and class is defined in exactly one module, dc only in core', () => {
  const where = (name: string) =>
    allModules.filter((m) => [...m.attributeTypes, ...m.objectClasses].some((d) => d.names.some((n) => n.toLowerCase() === name.toLowerCase())));
  assert.deepEqual(where('dc').map((m) => m.name), ['core']);
  assert.deepEqual(where('uid').map((m) => m.name), ['core']);
  assert.deepEqual(where('domainRelatedObject').map((m) => m.name), ['cosine']);
  assert.deepEqual(where('simpleSecurityObject').map((m) => m.name), ['cosine']);
  assert.deepEqual(where('changeLogEntry').map((m) => m.name), ['changelog']);
});

test('modules are in dependency order', () => {
  const known = new Set<string>();
  for (const m of allModules) {
    for (const d of [...m.attributeTypes, ...m.objectClasses]) for (const k of [d.oid, ...d.names]) known.add(k.toLowerCase());
    for (const d of m.attributeTypes) if (d.sup) assert.ok(known.has(d.sup.toLowerCase()), `${m.name}: ${d.names[0]} SUP ${d.sup}`);
    for (const d of m.objectClasses) {
      for (const r of [...(d.sup ?? []), ...(d.must ?? []), ...(d.may ?? [])]) {
        assert.ok(known.has(r.toLowerCase()), `${m.name}: ${d.names[0]} refers to ${r} before it is defined`);
      }
    }
  }
});
