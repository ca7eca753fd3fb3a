/**
 * `dcmx schema export` with the real slapd: the openldap form, included
 * after OpenLDAP's standard core, cosine, inetorgperson and nis schema, makes
 * a slapd that defines every user attribute type and object class dcmx has,
 * under the same OIDs and names; a populated appliance's `dcmx ldif export`
 * loads into it with ldapadd and reads back equal; the ldif form, added to a
 * running slapd's cn=config with ldapadd, does the same.
 * Needs: slapd, ldap-utils.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { adminArgs, run, runDcmx, startTestAppliance, tempDirs, testEnv, type TestAppliance } from '../helpers';
import { parseDescription, type Description } from '../fixtures/rfc4512';
import {
  SLAPD_CONFIG_DN, SLAPD_CONFIG_PW, startSlapd, treeContents, treeDifferences, type Slapd,
} from '../fixtures/slapd';
import { Schema } from '../../schema/registry';
import { allModules } from '../../schema/definitions';
import { openldapSchemaFile, openldapSchemaLdif, slapdExtraDefinitions } from '../../schema/openldap';
import { attributeTypeClauses, objectClassClauses } from '../../schema/registry';

const SUFFIX = 'o=internet';
const DOMAIN = `dc=example,dc=org,${SUFFIX}`;
const PEOPLE = `ou=people,${DOMAIN}`;
const tmp = tempDirs('dcmx-schema-export-');

/**
 * Entries of many of dcmx's classes, as an operator or a provisioning client
 * writes them: a mail domain with DNS records of the dnsdomain2 schema, Sun
 * messaging users and groups, a POSIX account (ou=people is the provisioned one).
 */
const POPULATION = `dn: uid=alice,${PEOPLE}
objectClass: inetOrgPerson
objectClass: inetMailUser
objectClass: inetUser
objectClass: posixAccount
objectClass: shadowAccount
uid: alice
cn: Alice Liddell
sn: Liddell
givenName: Alice
mail: alice@example.org
mailAlternateAddress: a.liddell@example.org
mailHost: mx2.example.org
mailDeliveryOption: mailbox
mailQuota: 1000000
mailMsgMaxBlocks: 200
mailUserStatus: active
inetUserStatus: active
uidNumber: 10001
gidNumber: 10000
homeDirectory: /home/alice
loginShell: /bin/bash
shadowMax: 99999
userPassword: alice-secret-1
description:: w6lsw6h2ZSBkZSBsJ8OpY29sZQ==

dn: cn=staff,${PEOPLE}
objectClass: groupOfUniqueNames
objectClass: mailGroup
objectClass: inetMailGroup
cn: staff
uniqueMember: uid=alice,${PEOPLE}
mail: staff@example.org
mgrpRFC822MailMember: bob@example.net
inetMailGroupStatus: active

dn: dc=www,${DOMAIN}
objectClass: dNSDomain2
dc: www
aRecord: 192.0.2.10
aAAARecord: 2001:db8::10
tXTRecord: "v=spf1 -all"
dNSTTL: 300

dn: dc=lists,${DOMAIN}
objectClass: dNSDomain2
objectClass: mailDomain
objectClass: inetDomain
dc: lists
mXRecord: 10 mx.example.org.
mailDomainStatus: active
mailDomainCatchallAddress: postmaster@lists.example.org
mailRoutingHosts: mx.example.org
inetDomainStatus: active
`;

let t: TestAppliance;
let exported: string;
before(async () => {
  t = await startTestAppliance();
  // The domain as dcmx provisions it (its entries, SOA/NS/MX records, mail attributes), then the rest by ldapadd.
  const p = await runDcmx(testEnv(t.dataDir), ['domain', 'add', 'example.org']);
  assert.equal(p.code, 0, p.stderr);
  const r = await run('ldapadd', adminArgs(t), POPULATION);
  assert.equal(r.code, 0, r.stderr);
  const e = await runDcmx(testEnv(t.dataDir), ['ldif', 'export', '--no-operational']);
  assert.equal(e.code, 0, e.stderr);
  exported = path.join(tmp(), 'export.ldif');
  fs.writeFileSync(exported, e.stdout);
});
after(async () => t.close());

/** Loads the export into `slapd` with ldapadd and checks that both hold the same entries. */
async function loadAndCompare(slapd: Slapd): Promise<void> {
  const add = await run('ldapadd', [...slapd.adminArgs, '-f', exported]);
  assert.equal(add.code, 0, `ldapadd of dcmx's export into slapd: ${add.stderr}`);
  const ours = await treeContents(adminArgs(t), SUFFIX);
  const theirs = await treeContents(slapd.adminArgs, SUFFIX);
  assert.ok(ours.size >= 10, `${ours.size} entries exported`);
  assert.deepEqual(treeDifferences(ours, theirs, ['dcmx', 'slapd']), []);
  assert.equal(theirs.size, ours.size);
}

/** slapd's cn=Subschema: its attribute types and object classes by OID. */
async function slapdSubschema(slapd: Slapd): Promise<{ types: Map<string, Description>; classes: Map<string, Description> }> {
  const r = await run('ldapsearch', ['-x', '-H', slapd.url, '-LLL', '-o', 'ldif-wrap=no', '-b', 'cn=Subschema', '-s', 'base', '(objectClass=*)', 'attributeTypes', 'objectClasses']);
  assert.equal(r.code, 0, r.stderr);
  const published = (attr: string) => new Map([...r.stdout.matchAll(new RegExp(`^${attr}: (.*)$`, 'gm'))]
    .map((m) => parseDescription(m[1])).map((d) => [d.oid, d] as [string, Description]));
  return { types: published('attributeTypes'), classes: published('objectClasses') };
}

const lower = (xs: string[] | undefined) => (xs ?? []).map((x) => x.toLowerCase());

describe('dcmx schema export', () => {
  test('the CLI prints both forms; a bad format is a usage error', async () => {
    const file = await runDcmx({}, ['schema', 'export']);
    assert.equal(file.code, 0, file.stderr);
    assert.equal(file.stdout, openldapSchemaFile());
    assert.equal((await runDcmx({}, ['schema', 'export', '--format', 'openldap'])).stdout, openldapSchemaFile());
    const ldif = await runDcmx({}, ['schema', 'export', '--format', 'ldif']);
    assert.equal(ldif.code, 0, ldif.stderr);
    assert.equal(ldif.stdout, openldapSchemaLdif());
    assert.match(ldif.stdout, /^dn: cn=dcmx,cn=schema,cn=config$/m);
    // It needs no configuration: a bad one (or none) is not read.
    const anyConfig = await runDcmx({ DCMX_THREADS: 'many' }, ['schema', 'export']);
    assert.equal(anyConfig.code, 0, anyConfig.stderr);
    assert.equal(anyConfig.stdout, openldapSchemaFile());
    const bad = await runDcmx({}, ['schema', 'export', '--format', 'xml']);
    assert.equal(bad.code, 64);
    assert.match(bad.stderr, /--format must be openldap or ldif/);
  });

  test("slapd with the export defines every user attribute type and class of dcmx's, as dcmx does", async () => {
    const slapd = await startSlapd({ suffixEntry: false });
    try {
      const { types, classes } = await slapdSubschema(slapd);
      const schema = new Schema(allModules);
      for (const at of schema.attributeTypes) {
        // Operational types are slapd's own business (schema/openldap.ts); dcmx's are in its root DSE only.
        if (at.operational) continue;
        const got = types.get(at.oid);
        assert.ok(got, `slapd defines ${at.name} (${at.oid})`);
        for (const n of lower(at.names)) assert.ok(lower(got.fields.get('NAME')).includes(n), `${at.oid} is named ${n} in slapd too`);
      }
      for (const oc of schema.objectClasses) {
        const got = classes.get(oc.oid);
        assert.ok(got, `slapd defines ${oc.name} (${oc.oid})`);
        for (const n of lower(oc.def.names)) assert.ok(lower(got.fields.get('NAME')).includes(n), `${oc.oid} is named ${n} in slapd too`);
        assert.ok(got.fields.has(oc.kind.toUpperCase()) || (oc.kind === 'structural' && !got.fields.has('AUXILIARY') && !got.fields.has('ABSTRACT')), `${oc.name} is ${oc.kind} in slapd too`);
      }
      // What the export adds, slapd publishes exactly as dcmx does.
      const { attributeTypes, objectClasses } = slapdExtraDefinitions();
      assert.ok(attributeTypes.length >= 80 && objectClasses.length >= 10, `${attributeTypes.length} types, ${objectClasses.length} classes exported`);
      const same = (mine: Description, theirs: Description | undefined, what: string) => {
        assert.ok(theirs, `slapd publishes ${what}`);
        const norm = (d: Description) => [...d.fields].map(([k, vs]) => [k, k === 'DESC' ? vs : lower(vs)]).sort();
        assert.deepEqual(norm(theirs), norm(mine), what);
      };
      for (const d of attributeTypes) same(parseDescription(`( ${attributeTypeClauses(d).join(' ')} )`), types.get(d.oid), d.names[0]);
      for (const d of objectClasses) same(parseDescription(`( ${objectClassClauses(d).join(' ')} )`), classes.get(d.oid), d.names[0]);
    } finally {
      await slapd.stop();
    }
  });

  test("slapd.conf form: a populated appliance's LDIF export loads with ldapadd and reads back equal", async () => {
    const slapd = await startSlapd({ suffixEntry: false });
    try {
      await loadAndCompare(slapd);
    } finally {
      await slapd.stop();
    }
  });

  test('cn=config form: ldapadd of the ldif export to a running slapd, then the same load reads back equal', async () => {
    const slapd = await startSlapd({ form: 'cn=config', dcmxSchema: false, suffixEntry: false });
    try {
      const config = ['-x', '-H', slapd.url, '-D', SLAPD_CONFIG_DN, '-w', SLAPD_CONFIG_PW];
      // Without it, slapd refuses dcmx's entries.
      const refused = await run('ldapadd', [...slapd.adminArgs, '-f', exported]);
      assert.notEqual(refused.code, 0, 'slapd without the dcmx schema refuses the export');
      const ldif = path.join(tmp(), 'dcmx.ldif');
      fs.writeFileSync(ldif, (await runDcmx({}, ['schema', 'export', '--format', 'ldif'])).stdout);
      const r = await run('ldapadd', [...config, '-f', ldif]);
      assert.equal(r.code, 0, `ldapadd of the schema to cn=config: ${r.stderr}`);
      const named = await run('ldapsearch', [...config, '-LLL', '-b', 'cn=schema,cn=config', '-s', 'one', '(cn=*dcmx)', 'cn']);
      assert.match(named.stdout, /^dn: cn=\{4\}dcmx,cn=schema,cn=config$/m, 'filed after core, cosine, inetorgperson and nis');
      // The entries the refused ldapadd may have added before its first failure are removed first.
      const del = await run('ldapdelete', [...slapd.adminArgs, '-r', SUFFIX]);
      assert.ok(del.code === 0 || del.code === 32, del.stderr);
      await loadAndCompare(slapd);
    } finally {
      await slapd.stop();
    }
  });

  test('cn=config form: slapadd -n0 of the ldif export builds a configuration slapd runs with', async () => {
    const slapd = await startSlapd({ form: 'cn=config', suffixEntry: false });
    try {
      await loadAndCompare(slapd);
    } finally {
      await slapd.stop();
    }
  });
});
