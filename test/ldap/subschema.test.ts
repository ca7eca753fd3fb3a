/**
 * cn=Subschema's matching rule uses (RFC 4512 §4.1.4), read over the running
 * appliance with ldapsearch and checked against its own attribute types and
 * matching rules: every rule an attribute type names (EQUALITY, ORDERING,
 * SUBSTR, own or inherited) has one value, which parses as a
 * MatchingRuleUseDescription; every type in APPLIES exists and is one the
 * rule really matches — it names the rule or has the values the rule
 * compares, and an extensible match under the rule (RFC 4511 §4.5.1.7.7) on
 * an entry's own values of the type is TRUE (equality, substrings) or FALSE
 * (ordering, a value is not less than itself). The values are operational:
 * `+` returns them, `*` does not.
 */
import { after, before, describe, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { adminArgs, run, startTestAppliance, type TestAppliance } from '../helpers';
import { parseDescription, tokens } from '../fixtures/rfc4512';

const PEOPLE = 'ou=people,o=internet';
const USER = `uid=alice,${PEOPLE}`;

let t: TestAppliance;
before(async () => {
  t = await startTestAppliance();
  const r = await run('ldapadd', adminArgs(t), [
    `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: people\n`,
    `dn: ${USER}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nobjectClass: shadowAccount\nuid: alice\ncn: Alice Liddell\n` +
      'sn: Liddell\ngivenName: Alice\nuidNumber: 10001\ngidNumber: 10000\nhomeDirectory: /home/alice\ngecos: Alice\nshadowMax: 99999\n' +
      'mail: alice@example.org\ntelephoneNumber: +1 555 0100\ndescription: Down the rabbit hole\nemployeeNumber: 42\n' +
      'preferredLanguage: en\nseeAlso: cn=White Rabbit,o=internet\nx121Address: 1234567\nhomePostalAddress: 1 Wonderland $ Oxford\n' +
      'userPassword: alice-secret-1\n',
  ].join('\n'));
  assert.equal(r.code, 0, r.stderr);
});
after(async () => t.close());

/** Values of `attr` in ldapsearch -LLL output (base64 values decoded). */
function values(ldif: string, attr: string): string[] {
  return [...ldif.matchAll(new RegExp(`^${attr}:(:?) (.*)$`, 'gim'))].map((m) => (m[1] ? Buffer.from(m[2], 'base64').toString('utf8') : m[2]));
}

async function subschema(...attrs: string[]): Promise<string> {
  const r = await run('ldapsearch', ['-x', '-H', t.ldapUrl, '-LLL', '-o', 'ldif-wrap=no', '-b', 'cn=Subschema', '-s', 'base', '(objectClass=*)', ...attrs]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

const NUMERICOID = /^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+$/;
const DESCR = /^[A-Za-z][A-Za-z0-9-]*$/;

/**
 * A MatchingRuleUseDescription (RFC 4512 §4.1.4), strictly:
 * `( numericoid [NAME qdescrs] [DESC qdstring] [OBSOLETE] APPLIES oids extensions )`.
 */
function parseRuleUse(s: string): { oid: string; names: string[]; applies: string[] } {
  const tk = tokens(s);
  let i = 0;
  const next = () => tk[i++];
  assert.equal(next(), '(', s);
  const oid = next();
  assert.match(oid, NUMERICOID, s);
  const names: string[] = [];
  const qdescr = (q: string) => {
    assert.match(q, /^'[A-Za-z][A-Za-z0-9-]*'$/, s);
    return q.slice(1, -1);
  };
  if (tk[i] === 'NAME') {
    i++;
    if (tk[i] === '(') {
      i++;
      while (tk[i] !== ')') names.push(qdescr(next()));
      i++;
    } else names.push(qdescr(next()));
  }
  if (tk[i] === 'DESC') {
    i++;
    assert.match(next(), /^'.+'$/, s);
  }
  if (tk[i] === 'OBSOLETE') i++;
  assert.equal(next(), 'APPLIES', s);
  const applies: string[] = [];
  const oidTok = (o: string) => {
    assert.ok(NUMERICOID.test(o) || DESCR.test(o), `${o} is an oid in ${s}`);
    return o;
  };
  if (tk[i] === '(') {
    i++;
    applies.push(oidTok(next()));
    while (tk[i] === '$') {
      i++;
      applies.push(oidTok(next()));
    }
    assert.equal(next(), ')', s);
  } else applies.push(oidTok(next()));
  while (tk[i] !== ')' && i < tk.length) {
    // extensions: X-name qdstrings
    assert.match(next(), /^X-[A-Za-z_-]+$/, s);
    next();
  }
  assert.equal(next(), ')', s);
  assert.equal(i, tk.length, `nothing after the closing parenthesis: ${s}`);
  return { oid, names, applies };
}

interface TypeDesc {
  oid: string;
  names: string[];
  sup?: string;
  equality?: string;
  ordering?: string;
  substr?: string;
  syntax?: string;
}

/** The fields of an AttributeTypeDescription (RFC 4512 §4.1.2) this test needs. */
function parseType(s: string): TypeDesc {
  const { oid, fields } = parseDescription(s);
  const one = (k: string) => fields.get(k)?.[0];
  return {
    oid, names: fields.get('NAME') ?? [], sup: one('SUP'), equality: one('EQUALITY'), ordering: one('ORDERING'), substr: one('SUBSTR'),
    syntax: one('SYNTAX')?.replace(/\{\d+\}$/, ''),
  };
}

const SUBSTRING_ASSERTION = '1.3.6.1.4.1.1466.115.121.1.58';
const syn = (...n: number[]) => n.map((x) => `1.3.6.1.4.1.1466.115.121.1.${x}`);
/**
 * The value syntaxes RFC 4517 §4.2 says each substrings rule compares: Directory String (15),
 * Printable String (44), Country String (11), Telephone Number (50), IA5 String (26), Numeric String (36).
 */
const SUBSTRINGS_OF: Record<string, string[]> = {
  caseexactsubstringsmatch: syn(15, 44, 11, 50),
  caseignoresubstringsmatch: syn(15, 44, 11, 50),
  caseignoreia5substringsmatch: syn(26),
  caseexactia5substringsmatch: syn(26),
  numericstringsubstringsmatch: syn(36),
  telephonenumbersubstringsmatch: syn(50),
};

/** RFC 4515 §3 value encoding: `*`, `(`, `)`, `\` and NUL escaped. */
const filterValue = (v: string) => v.replace(/[*()\\\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

describe('matchingRuleUse (RFC 4512 §4.1.4)', () => {
  let types: TypeDesc[];
  let byName: Map<string, TypeDesc>;
  let rules: Map<string, { oid: string; syntax: string }>;
  let uses: { oid: string; names: string[]; applies: string[]; raw: string }[];
  /** A type's EQUALITY, ORDERING and SUBSTR, inherited through SUP where it names none (RFC 4512 §4.1.2). */
  const effective = (d: TypeDesc): { equality?: string; ordering?: string; substr?: string; syntax?: string } => {
    const sup = d.sup ? effective(byName.get(d.sup.toLowerCase())!) : {};
    return { equality: d.equality ?? sup.equality, ordering: d.ordering ?? sup.ordering, substr: d.substr ?? sup.substr, syntax: d.syntax ?? sup.syntax };
  };

  before(async () => {
    const ldif = await subschema('attributeTypes', 'matchingRules', 'matchingRuleUse');
    types = values(ldif, 'attributeTypes').map(parseType);
    byName = new Map(types.flatMap((d) => [d.oid, ...d.names].map((k) => [k.toLowerCase(), d] as [string, TypeDesc])));
    rules = new Map(values(ldif, 'matchingRules').map((v) => {
      const tk = tokens(v);
      return [tk[tk.indexOf('NAME') + 1].slice(1, -1).toLowerCase(), { oid: tk[1], syntax: tk[tk.indexOf('SYNTAX') + 1] }];
    }));
    uses = values(await subschema('matchingRuleUse'), 'matchingRuleUse').map((raw) => ({ ...parseRuleUse(raw), raw }));
  });

  test('every rule an attribute type names has one value, under the rule\'s OID and name', () => {
    assert.ok(uses.length > 10, `${uses.length} values`);
    const oids = uses.map((u) => u.oid);
    assert.equal(new Set(oids).size, oids.length, 'one value per rule');
    const named = new Set<string>();
    for (const d of types) {
      const e = effective(d);
      for (const r of [e.equality, e.ordering, e.substr]) if (r) named.add(r.toLowerCase());
    }
    for (const r of named) {
      const rule = rules.get(r);
      assert.ok(rule, `${r} is in matchingRules`);
      const u = uses.find((x) => x.oid === rule.oid);
      assert.ok(u, `a matchingRuleUse value for ${r} (${rule.oid})`);
      assert.deepEqual(u.names.map((n) => n.toLowerCase()), [r], u.raw);
    }
  });

  test('APPLIES holds every type that names the rule, and only types the rule matches', () => {
    for (const u of uses) {
      const name = u.names[0].toLowerCase();
      const rule = rules.get(name)!;
      assert.ok(rule, `${u.raw}: the rule is described`);
      assert.equal(rule.oid, u.oid);
      const listed = u.applies.map((a) => a.toLowerCase());
      assert.equal(new Set(listed).size, listed.length, `no type twice: ${u.raw}`);
      // The syntaxes the rule compares: its own for equality and ordering rules; for a substrings
      // rule (assertion syntax: Substring Assertion), those RFC 4517 §4.2 names and those of the types that name it.
      const substrings = rule.syntax === SUBSTRING_ASSERTION;
      const syntaxes = new Set(substrings
        ? [...(SUBSTRINGS_OF[name] ?? []), ...types.filter((d) => effective(d).substr?.toLowerCase() === name).map((d) => effective(d).syntax)]
        : [rule.syntax]);
      for (const a of listed) {
        const d = byName.get(a);
        assert.ok(d, `${a} in APPLIES of ${u.names[0]} is an attribute type`);
        const e = effective(d);
        const names = [e.equality, e.ordering, e.substr].some((r) => r?.toLowerCase() === name);
        assert.ok(names || syntaxes.has(e.syntax), `${a} (SYNTAX ${e.syntax}) neither names ${u.names[0]} nor has the values it compares`);
      }
      for (const d of types) {
        const e = effective(d);
        if ([e.equality, e.ordering, e.substr].some((r) => r?.toLowerCase() === name)) {
          assert.ok(d.names.some((n) => listed.includes(n.toLowerCase())), `${d.names[0]} names ${u.names[0]} and is in its APPLIES`);
        }
      }
    }
  });

  test('an extensible match under each rule works on the types it applies to, with an entry\'s own values', async () => {
    const r = await run('ldapsearch', [...adminArgs(t), '-LLL', '-o', 'ldif-wrap=no', '-b', USER, '-s', 'base', '(objectClass=*)', '*', '+']);
    assert.equal(r.code, 0, r.stderr);
    const held = new Map<string, string[]>();
    for (const m of r.stdout.matchAll(/^([A-Za-z][\w-]*):(:?) (.*)$/gm)) {
      if (m[1] === 'dn') continue;
      const v = m[2] ? Buffer.from(m[3], 'base64').toString('utf8') : m[3];
      // Values a filter string carries as text (RFC 4515): printable, no escapes inside a substring piece.
      if (!/^[\x20-\x7e]+$/.test(v)) continue;
      held.set(m[1].toLowerCase(), [...(held.get(m[1].toLowerCase()) ?? []), v]);
    }
    let tried = 0;
    const usages = new Set<string>();
    for (const u of uses) {
      const rule = rules.get(u.names[0].toLowerCase())!;
      const usage = rule.syntax === SUBSTRING_ASSERTION ? 'substrings' : /Ordering/.test(u.names[0]) ? 'ordering' : 'equality';
      const items: string[] = [];
      for (const a of u.applies) {
        const vs = byName.get(a.toLowerCase())!.names.flatMap((n) => held.get(n.toLowerCase()) ?? []);
        if (usage === 'ordering') {
          // No value is less than itself: NOT of the match is TRUE (and the match is not Undefined).
          if (vs.length === 1) items.push(`(!(${a}:${u.names[0]}:=${filterValue(vs[0])}))`);
        } else {
          for (const v of vs) {
            if (usage === 'substrings' && /[*\\]/.test(v)) continue;
            const assertion = usage === 'substrings' ? `*${v.slice(1, -1)}*` : v;
            if (usage === 'substrings' && v.length < 3) continue;
            items.push(`(${a}:${u.names[0]}:=${filterValue(assertion)})`);
          }
        }
      }
      for (const item of items) {
        const s = await run('ldapsearch', [...adminArgs(t), '-LLL', '-b', USER, '-s', 'base', item, '1.1']);
        assert.equal(s.code, 0, `${item}: ${s.stderr}`);
        assert.match(s.stdout, /^dn: uid=alice,/m, `${item} is TRUE for ${USER}`);
        tried++;
        usages.add(usage);
      }
    }
    assert.ok(tried > 30, `${tried} extensible matches tried`);
    assert.deepEqual([...usages].sort(), ['equality', 'ordering', 'substrings']);
  });

  test('matchingRuleUse is operational: `+` returns it, `*` does not', async () => {
    const plus = await subschema('+');
    assert.ok(values(plus, 'matchingRuleUse').length === uses.length, 'every value under +');
    for (const a of ['attributeTypes', 'objectClasses', 'matchingRules', 'ldapSyntaxes']) assert.ok(values(plus, a).length > 0, `${a} under +`);
    const star = await subschema('*');
    assert.equal(values(star, 'matchingRuleUse').length, 0);
    const at = types.find((d) => d.names.includes('matchingRuleUse'));
    assert.equal(at?.oid, '2.5.21.8');
    const desc = values(await subschema('attributeTypes'), 'attributeTypes').find((v) => v.startsWith('( 2.5.21.8 '))!;
    assert.match(desc, /USAGE directoryOperation/);
  });
});
