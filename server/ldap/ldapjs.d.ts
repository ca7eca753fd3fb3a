// ldapjs 3 ships no type declarations; server/ldap is the only place that uses it.
declare module 'ldapjs';
