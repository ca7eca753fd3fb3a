/** The approximate matching rule (schema/matching.ts approximateKeys / approximateMatch). */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { approximateKeys, approximateMatch } from '../../schema/matching';

const approx = (value: string, assertion: string) => approximateMatch(approximateKeys(value), approximateKeys(assertion));

test('approximate keys: Soundex per word, case and diacritics folded', () => {
  assert.deepEqual(approximateKeys('Robert Rupert'), ['r163', 'r163']);
  assert.deepEqual(approximateKeys('Ashcraft'), ['a261'], 'h does not separate equal codes');
  assert.deepEqual(approximateKeys('Tymczak'), ['t522']);
  assert.deepEqual(approximateKeys('Pfister'), ['p236'], 'the first letter absorbs an equal code');
  assert.deepEqual(approximateKeys('Müller'), approximateKeys('MULLER'));
  assert.deepEqual(approximateKeys('Ærøskøbing 42'), ['ærøskøbing', '42'], 'words beyond a-z and numbers are their own keys');
});

test('approximate match: every assertion word, in order', () => {
  assert.ok(approx('Smith, John', 'smyth'));
  assert.ok(approx('Smith, John', 'Smyth Jon'));
  assert.ok(approx('José Núñez', 'jose nunez'));
  assert.ok(!approx('Smith, John', 'Jon Smyth'), 'order matters');
  assert.ok(approx('Smith, John', 'Schmidt'), 'Soundex: S530 as Smith');
  assert.ok(!approx('Smith, John', 'Jones'));
  assert.ok(!approx('John', 'John Smith'), 'every assertion word must be found');
  assert.ok(approx('room 101', 'room 101'));
  assert.ok(!approx('room 101', 'room 102'), 'digits compare exactly');
});
