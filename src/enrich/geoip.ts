// IP enrichment from MaxMind databases: location, network (ASN), and whether the address is an
// anonymizer (VPN, Tor, proxy), a hosting provider or a mobile carrier's shared NAT.
import { existsSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname } from 'node:path';
import ipaddr from 'ipaddr.js';
import { LRUCache } from 'lru-cache';
import maxmind, {
  type AnonymousIPResponse,
  type AsnResponse,
  type CityResponse,
  type ConnectionTypeResponse,
  type Reader,
  type Response,
} from 'maxmind';
import type { Geo } from '../domain/events.js';

export interface GeoPaths {
  city: string;
  asn: string;
  anonymousIp: string;
  connectionType: string | null;
}

export class GeoDatabaseError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`MaxMind database ${file} is unreadable: ${reason}`);
    this.name = 'GeoDatabaseError';
  }
}

// Probe lookups touch the search tree and the data section, so a corrupt file fails at start-up
// and not on the first event that happens to reach the broken part.
const PROBES = ['1.1.1.1', '81.2.69.142', '2001:db8::1', '175.16.199.1', '8.8.8.8'];

/**
 * A database built by MaxMind for testing (the fixtures of their reader libraries): fake data that
 * locates real addresses wrongly or not at all. Their metadata says so in the description.
 */
export class GeoTestDatabaseError extends Error {
  constructor(readonly databases: { setting: string; file: string; description: string }[]) {
    super(
      `MaxMind test databases configured: ${databases.map((d) => `maxmind.${d.setting} = ${d.file} ("${d.description}")`).join('; ')}. ` +
        'They hold fake data, so `run` refuses them: set FAIRFLAG_MAXMIND_DIR (or maxmind.city, asn, anonymousIp, connectionType) to licensed GeoIP2/GeoLite2 databases, ' +
        'or maxmind.allowTestDatabases: true for a demo or test environment',
    );
    this.name = 'GeoTestDatabaseError';
  }
}

/** The metadata description of a MaxMind test database, or undefined for a real one. */
export function testDatabaseDescription(meta: Reader<Response>['metadata']): string | undefined {
  const texts = Object.values(meta.description ?? {});
  return texts.find((t) => /\btest database\b|fake .*data/i.test(t));
}

async function openChecked<T extends Response>(file: string): Promise<Reader<T>> {
  if (!existsSync(file)) {
    const dir = dirname(file);
    throw new GeoDatabaseError(
      file,
      existsSync(dir) ? `no such file in ${dir}` : `its folder ${dir} does not exist`,
    );
  }
  let reader: Reader<T>;
  try {
    reader = await maxmind.open<T>(file, { cache: { max: 20_000 }, watchForUpdates: false });
  } catch (err) {
    throw new GeoDatabaseError(file, (err as Error).message);
  }
  try {
    checkSearchTree(readFileSync(file), reader.metadata);
    for (const ip of PROBES) reader.get(ip);
  } catch (err) {
    throw new GeoDatabaseError(file, `corrupt (${(err as Error).message})`);
  }
  return reader;
}

/**
 * Every record of the search tree must point at another node, at "not found", or into the data
 * section. One pass over the nodes (a few million for a full City database: well under a second).
 */
function checkSearchTree(db: Buffer, meta: Reader<Response>['metadata']): void {
  const { nodeCount, recordSize, nodeByteSize, searchTreeSize } = meta;
  const dataStart = searchTreeSize + 16;
  const read: Record<number, (o: number) => [number, number]> = {
    24: (o) => [db.readUIntBE(o, 3), db.readUIntBE(o + 3, 3)],
    28: (o) => [
      ((db[o + 3]! & 0xf0) << 20) | db.readUIntBE(o, 3),
      ((db[o + 3]! & 0x0f) << 24) | db.readUIntBE(o + 4, 3),
    ],
    32: (o) => [db.readUInt32BE(o), db.readUInt32BE(o + 4)],
  };
  const records = read[recordSize];
  if (!records) throw new Error(`unsupported record size ${recordSize}`);
  if (searchTreeSize + 16 > db.length) throw new Error('search tree larger than the file');
  for (let node = 0; node < nodeCount; node++) {
    for (const v of records(node * nodeByteSize)) {
      // only a lookup starts at the root: a record pointing back to it makes a cycle
      if (v === 0) throw new Error(`search tree node ${node} points back to the root`);
      if (v <= nodeCount) continue;
      const offset = v - nodeCount - 16 + dataStart;
      if (v < nodeCount + 16 || offset >= db.length) {
        throw new Error(`search tree node ${node} points outside the file (record ${v})`);
      }
    }
  }
}

export class GeoIp {
  private constructor(
    private readonly city: Reader<CityResponse>,
    private readonly asn: Reader<AsnResponse>,
    private readonly anon: Reader<AnonymousIPResponse>,
    private readonly connection: Reader<ConnectionTypeResponse> | null,
  ) {}

  static async open(paths: GeoPaths): Promise<GeoIp> {
    const [city, asn, anon, connection] = await Promise.all([
      openChecked<CityResponse>(paths.city),
      openChecked<AsnResponse>(paths.asn),
      openChecked<AnonymousIPResponse>(paths.anonymousIp),
      paths.connectionType
        ? openChecked<ConnectionTypeResponse>(paths.connectionType)
        : Promise.resolve(null),
    ]);
    const geo = new GeoIp(city, asn, anon, connection);
    const readers = { city, asn, anonymousIp: anon, connectionType: connection };
    for (const [setting, reader] of Object.entries(readers)) {
      const description = reader && testDatabaseDescription(reader.metadata);
      if (description)
        geo.testDatabases.push({ setting, file: paths[setting as keyof GeoPaths]!, description });
    }
    return geo;
  }

  /** The configured databases that are MaxMind test databases (see GeoTestDatabaseError). */
  readonly testDatabases: { setting: string; file: string; description: string }[] = [];

  /** Throws GeoTestDatabaseError if any database is a test one. */
  refuseTestDatabases(): void {
    if (this.testDatabases.length) throw new GeoTestDatabaseError(this.testDatabases);
  }

  /**
   * An account's addresses repeat from event to event: the answers are kept (the databases do not
   * change while the process runs). Shared by every event: nothing may change a returned Geo.
   */
  private readonly answers = new LRUCache<string, Geo>({ max: 50_000 });

  /** Enriches a valid IP (validate first with isValidIp). Unknown networks give a Geo without location. */
  lookup(rawIp: string): Geo {
    let geo = this.answers.get(rawIp);
    if (!geo) this.answers.set(rawIp, (geo = this.resolve(rawIp)));
    return geo;
  }

  private resolve(rawIp: string): Geo {
    const addr = normalize(rawIp);
    const ip = addr.toString();
    const city = this.city.get(ip);
    const asn = this.asn.get(ip);
    const anon = this.anon.get(ip);
    const conn = this.connection?.get(ip);
    const kinds: string[] = [];
    if (anon?.is_anonymous_vpn) kinds.push('vpn');
    if (anon?.is_tor_exit_node) kinds.push('tor');
    if (anon?.is_public_proxy) kinds.push('public proxy');
    if (anon?.is_residential_proxy) kinds.push('residential proxy');
    const hosting = !!anon?.is_hosting_provider;
    if (hosting) kinds.push('hosting');
    const geo: Geo = {
      ip,
      prefix: prefixOf(addr),
      anonymizer: kinds.some((k) => k !== 'hosting'),
      hosting,
      carrierNat:
        conn?.connection_type === 'Cellular' ||
        (addr.kind() === 'ipv4' && addr.range() === 'carrierGradeNat'),
      anonymizerKinds: kinds,
    };
    const country = city?.country?.iso_code ?? city?.registered_country?.iso_code;
    if (country) geo.country = country;
    const cityName = city?.city?.names?.en;
    if (cityName) geo.city = cityName;
    const loc = city?.location;
    if (loc?.latitude !== undefined && loc.longitude !== undefined) {
      geo.latitude = loc.latitude;
      geo.longitude = loc.longitude;
      if (loc.accuracy_radius !== undefined) geo.accuracyKm = loc.accuracy_radius;
    }
    if (asn?.autonomous_system_number !== undefined) geo.asn = asn.autonomous_system_number;
    if (asn?.autonomous_system_organization) geo.asOrg = asn.autonomous_system_organization;
    return geo;
  }
}

/**
 * Strict: four decimal octets or a full IPv6 literal; "999.1.1.1" and "::ffff:" are not IPs, nor
 * is anything with a zone id ("fe80::1%en-0"). Both Node and ipaddr.js (which enriches it) must
 * accept it: a string one of them refuses never reaches the other.
 */
export function isValidIp(ip: string): boolean {
  return isIP(ip) !== 0 && !ip.includes('%') && ipaddr.isValid(ip);
}

/** IPv4-mapped IPv6 (::ffff:1.2.3.4) is the IPv4 address: one network, one account history. */
function normalize(ip: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const addr = ipaddr.parse(ip);
  return addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()
    ? (addr as ipaddr.IPv6).toIPv4Address()
    : addr;
}

function prefixOf(addr: ipaddr.IPv4 | ipaddr.IPv6): string {
  if (addr.kind() === 'ipv4') {
    const o = (addr as ipaddr.IPv4).octets;
    return `${o[0]}.${o[1]}.${o[2]}.0/24`;
  }
  const parts = (addr as ipaddr.IPv6).parts.slice(0, 3);
  return `${parts.map((p) => p.toString(16)).join(':')}::/48`;
}
