/**
 * Types for native-dns-packet 0.1.1 (no upstream typings), covering what dcmx
 * touches. UNSAFE on untrusted input: `Packet.parse` loops forever on a
 * self-pointing compression pointer (issue #18) and asserts on QDCOUNT ≠ 1;
 * `Packet.write` throws on truncation, on compression pointers past 0x3FFF
 * and on SOA serials / TTLs ≥ 2^31. server/dns/wire.ts validates and encodes
 * itself; see its module comment.
 */
declare module 'native-dns-packet' {
  namespace Packet {
    interface Header {
      id: number;
      qr: number;
      opcode: number;
      aa: number;
      tc: number;
      rd: number;
      ra: number;
      res1: number;
      res2: number;
      res3: number;
      rcode: number;
    }
    interface Question {
      name: string;
      type: number;
      class: number;
    }
    /** A decoded or to-be-encoded RR; type-specific fields vary (address, data, exchange, priority, primary, ...). */
    interface ResourceRecord {
      name: string;
      type: number;
      class: number;
      ttl: number;
      [field: string]: unknown;
    }
    interface Edns extends ResourceRecord {
      rcode: number;
      version: number;
      do: number;
      z: number;
      options: { code: number; data: Buffer }[];
    }
  }
  class Packet {
    header: Packet.Header;
    question: Packet.Question[];
    answer: Packet.ResourceRecord[];
    authority: Packet.ResourceRecord[];
    additional: Packet.ResourceRecord[];
    edns?: Packet.Edns;
    edns_version?: number;
    payload?: number;
    /** Decodes a message. Hangs or throws on hostile input: validate first. */
    static parse(msg: Buffer): Packet;
    /** Encodes `packet` into `buf`, returning the length written. Throws instead of truncating. */
    static write(buf: Buffer, packet: Partial<Packet> & Pick<Packet, 'header' | 'question'>): number;
    static consts: {
      NAME_TO_QTYPE: Record<string, number>;
      QTYPE_TO_NAME: Record<number, string>;
      [table: string]: unknown;
    };
  }
  export = Packet;
}
