/**
 * Every schema module, in dependency order: a module only refers to
 * attribute types and object classes defined by itself or by modules before
 * it in this list.
 */
import type { SchemaModule } from '../types';
import { core } from './core';
import { cosine } from './cosine';
import { inetOrgPerson } from './inetorgperson';
import { changelog } from './changelog';
import { dnsDomain2 } from './dnsdomain2';
import { dcmx } from './dcmx';
import { iplanet } from './iplanet';
import { nis } from './nis';

export { core, cosine, inetOrgPerson, changelog, dnsDomain2, dcmx, iplanet, nis };

export const allModules: SchemaModule[] = [core, cosine, inetOrgPerson, changelog, dnsDomain2, dcmx, iplanet, nis];
