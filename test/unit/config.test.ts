import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import avro from 'avsc';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import type { Config } from '../../config/schema.js';
import { failedBurst } from '../../processors/login/failed-burst.js';
import { SIGNALS } from '../../processors/registry.js';
import { paramsOf } from '../../src/engine/policy.js';
import {
  ConfigError,
  DEFAULT_CONFIG_FILE,
  loadConfig,
  validateConfig,
  type LoadOptions,
} from '../../src/runtime/config-loader.js';
import { PROJECT_ROOT } from '../../src/runtime/project.js';

/** The problems a config is rejected with (fails the test if it is accepted or throws anything else). */
function problemsOf(opts: LoadOptions): string[] {
  try {
    loadConfig(opts);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error(`accepted: ${JSON.stringify(opts)}`);
}
const withEnv = (env: Record<string, string>) => problemsOf({ env });
const burst = (c: Config) => paramsOf(c, failedBurst);

const dir = mkdtempSync(join(tmpdir(), 'fairflag-config-'));
let files = 0;
/** An environment file merged over the defaults. */
function yamlFile(text: string): string {
  const file = join(dir, `env-${++files}.yaml`);
  writeFileSync(file, text);
  return file;
}

describe('config/default.yaml', () => {
  it('validates, and has a block for every signal in the registry', () => {
    const { config, version, sources } = loadConfig({ env: {} });
    expect(sources).toEqual([DEFAULT_CONFIG_FILE]);
    expect(version).toMatch(/^cfg-[0-9a-f]{12}$/);
    expect(config.review.action).toBe('review');
    const signals = config.signals as Record<string, Record<string, unknown>>;
    for (const s of SIGNALS) expect(signals[s.family]?.[s.id.slice(s.family.length + 1)], s.id).toBeDefined();
  });
});

describe('review only (principle 1)', () => {
  it.each(['suspend', 'ban', 'hold_funds', 'close_contract', 'reverse_payment', 'terminate', 'REVIEW', ''])(
    'rejects review.action %j, naming the only action allowed',
    (action) => {
      expect(withEnv({ FAIRFLAG__review__action: JSON.stringify(action) })).toEqual([
        `review.action: expected "review", the only action fairflag can take, got ${JSON.stringify(action)}`,
      ]);
    },
  );

  it.each([
    ['FAIRFLAG__queues__account_security__action', 'suspend', 'queues.account_security.action'],
    ['FAIRFLAG__signals__login__failed_burst__action', 'ban', 'signals.login.failed_burst.action'],
    [
      'FAIRFLAG__signals__contract__self_dealing__onFire',
      'close_contract',
      'signals.contract.self_dealing.onFire',
    ],
    ['FAIRFLAG__review__hold_funds', 'true', 'review.hold_funds'],
    ['FAIRFLAG__mitigations__tenure__action', 'ban', 'mitigations.tenure.action'],
    ['FAIRFLAG__actions', '[suspend, ban]', 'actions'],
  ])('rejects an extra key %s as an unknown setting', (name, value, path) => {
    expect(withEnv({ [name]: value })).toEqual([`${path}: unknown setting`]);
  });

  it('rejects a new queue that carries an action instead of a notice', () => {
    expect(withEnv({ FAIRFLAG__queues__x__action: 'suspend' })).toEqual([
      'queues.x.notice: expected a notice with category, text and howToResolve, got nothing',
      'queues.x.action: unknown setting',
    ]);
  });

  it('has exactly one action symbol, REVIEW, in the flag schema', () => {
    const schema = JSON.parse(readFileSync(join(PROJECT_ROOT, 'schemas/review-flag.avsc'), 'utf8')) as {
      fields: { name: string; type: unknown }[];
    };
    const action = schema.fields.find((f) => f.name === 'action');
    expect(action?.type).toMatchObject({ type: 'enum', symbols: ['REVIEW'] });
    // and Avro itself refuses any other value
    const type = avro.Type.forSchema(schema as avro.Schema);
    const field = (type as avro.types.RecordType).fields.find((f) => f.name === 'action')!;
    expect(field.type.isValid('REVIEW')).toBe(true);
    for (const other of ['BAN', 'SUSPEND', 'HOLD_FUNDS', 'review'])
      expect(field.type.isValid(other)).toBe(false);
  });
});

describe('no code path or value can express another action', () => {
  const ACTION = String.raw`(?:suspend(?:ed|_account)?|ban(?:ned|_account|_user)?|(?:hold|freeze)[_ -]?(?:funds|payments?)|close[_ -]?(?:contract|account)s?|reverse[_ -]?(?:payments?|earnings)|terminate[_ -]?(?:account|contract)|deactivate[_ -]?account)`;
  const detectors: [string, RegExp][] = [
    // a string literal (TS, Lua, JSON/Avro symbol) that is exactly an action word
    ['string literal', new RegExp(String.raw`(['"\x60])\s*${ACTION}\s*\1`, 'gi')],
    // a YAML value or list item that is exactly an action word
    [
      'YAML value',
      new RegExp(String.raw`^[ \t]*(?:-[ \t]+|[\w.-]+[ \t]*:[ \t]+)${ACTION}[ \t]*(?:#.*)?$`, 'gim'),
    ],
    // an enum member named like an action
    ['enum member', new RegExp(String.raw`\benum\s+\w+\s*\{[^}]*\b${ACTION}\b`, 'gi')],
  ];
  const find = (text: string) =>
    detectors.flatMap(([kind, re]) => [...text.matchAll(re)].map((m) => `${kind}: ${m[0].trim()}`));

  function files(d: string): string[] {
    return readdirSync(d).flatMap((name) => {
      const p = join(d, name);
      return statSync(p).isDirectory() ? files(p) : /\.(ts|ya?ml|avsc|json|lua)$/.test(name) ? [p] : [];
    });
  }
  const sources = ['src', 'processors', 'config', 'schemas'].flatMap((d) => files(join(PROJECT_ROOT, d)));

  it('detects action values however they are written, and not prose that says fairflag never does them', () => {
    for (const bad of [
      `const action = 'suspend';`,
      `{ "type": "enum", "symbols": ["REVIEW", "BAN"] }`,
      `type Action = 'review' | "hold_funds";`,
      `return \`close-contract\`;`,
      `review:\n  action: hold_funds # oops`,
      `actions:\n  - close_contract`,
      `export enum Action { Review, Suspend }`,
      `local a = 'reverse_payments'`,
    ])
      expect(find(bad), bad).not.toEqual([]);
    for (const fine of [
      `// fairflag never bans and never suspends`,
      `# It never suspends, bans, closes a contract or moves money.`,
      `description: 'A flag never suspends or bans an account',`,
      `"doc": "Always REVIEW. fairflag cannot express any other action."`,
      `const banner = 'Bantry Bay';`,
      `reviewQueue: 'account_security'`,
    ])
      expect(find(fine), fine).toEqual([]);
  });

  it('finds none in src/, processors/, config/ or schemas/', () => {
    const rel = sources.map((f) => relative(PROJECT_ROOT, f));
    expect(rel).toEqual(
      expect.arrayContaining([
        'schemas/review-flag.avsc',
        'config/default.yaml',
        'config/schema.ts',
        'src/domain/flags.ts',
      ]),
    );
    expect(rel.length).toBeGreaterThan(40);
    const hits = sources.flatMap((f) =>
      find(readFileSync(f, 'utf8')).map((h) => `${relative(PROJECT_ROOT, f)}: ${h}`),
    );
    expect(hits).toEqual([]);
  });
});

describe('validation errors', () => {
  it('names the path, what is allowed and the bad value', () => {
    let caught: unknown;
    try {
      loadConfig({ env: { FAIRFLAG__signals__login__failed_burst__threshold: 'ten' } });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).problems).toEqual([
      'signals.login.failed_burst.threshold: expected a positive integer, got "ten"',
    ]);
    expect((caught as ConfigError).message).toContain(
      'env (FAIRFLAG__signals__login__failed_burst__threshold)',
    );
  });

  it('lists every problem, not just the first', () => {
    expect(
      withEnv({
        FAIRFLAG__signals__login__failed_burst__threshold: '0',
        FAIRFLAG__signals__payment__method_velocity__weight: '-1',
        FAIRFLAG__mitigations__tenure__factor: '0',
      }),
    ).toEqual([
      'signals.login.failed_burst.threshold: expected a positive integer, got 0',
      'signals.payment.method_velocity.weight: expected a positive number, got -1',
      'mitigations.tenure.factor: expected a factor between 0 (exclusive) and 1, got 0',
    ]);
  });

  it.each(SIGNALS.filter((s) => s.weak).map((s) => s.id))(
    'refuses to make weak signal %s sufficient alone',
    (id) => {
      const [family, name] = id.split('.') as [string, string];
      expect(withEnv({ [`FAIRFLAG__signals__${family}__${name}__sufficientAlone`]: 'true' })).toEqual([
        `signals.${family}.${name}.sufficientAlone: expected false: ${id} is a weak signal and never raises a flag on its own, got true`,
      ]);
    },
  );

  it('rejects a signal sent to a queue that is not configured', () => {
    expect(withEnv({ FAIRFLAG__signals__login__failed_burst__queue: 'fraud' })).toEqual([
      'signals.login.failed_burst.queue: expected one of the configured queues (account_security, identity, payments, contracts), got "fraud"',
    ]);
  });

  it('requires severity bands to rise, the first at most the review threshold', () => {
    expect(
      withEnv({ FAIRFLAG__review__severities: '[{name: low, minScore: 2}, {name: medium, minScore: 1.5}]' }),
    ).toEqual(['review.severities.1.minScore: expected severity bands in rising order of minScore, got 1.5']);
    expect(
      withEnv({ FAIRFLAG__review__severities: '[{name: low, minScore: 2}, {name: high, minScore: 2}]' }),
    ).toEqual(['review.severities.1.minScore: expected severity bands in rising order of minScore, got 2']);
    expect(withEnv({ FAIRFLAG__review__severities: '[{name: low, minScore: 2.5}]' })).toEqual([
      'review.severities.0.minScore: expected at most the review threshold (2), so every flag has a severity, got 2.5',
    ]);
  });

  it.each(['soon', '0m', '-5m', '15 minutes', '15', 'PT15M'])('rejects the duration %j', (window) => {
    expect(withEnv({ FAIRFLAG__signals__login__failed_burst__window: JSON.stringify(window) })).toEqual([
      `signals.login.failed_burst.window: expected a duration like 15m, 24h or 90d, got ${JSON.stringify(window)}`,
    ]);
  });

  it('accepts the durations analysts write, as milliseconds', () => {
    for (const [text, ms] of [
      ['90s', 90_000],
      ['15m', 900_000],
      ['1.5h', 5_400_000],
      ['7d', 604_800_000],
      ['2w', 1_209_600_000],
    ] as const)
      expect(
        burst(loadConfig({ env: { FAIRFLAG__signals__login__failed_burst__window: text } }).config).window,
      ).toBe(ms);
  });

  it('reports a YAML alias that makes a setting contain itself, instead of crashing', () => {
    const cyclic = yamlFile('review: &r\n  action: *r\n');
    expect(problemsOf({ env: {}, file: cyclic })).toEqual([
      'review.action: expected "review", the only action fairflag can take, got {"action":"[Circular]"}',
    ]);
  });

  it('reports a file that cannot be read or is not a mapping', () => {
    expect(problemsOf({ env: {}, file: join(dir, 'missing.yaml') })).toEqual([
      `${join(dir, 'missing.yaml')}: cannot read (ENOENT)`,
    ]);
    const list = yamlFile('- just\n- a list\n');
    expect(problemsOf({ env: {}, file: list })).toEqual([
      `${list}: expected a YAML mapping at the top level`,
    ]);
  });
});

describe('overrides', () => {
  it('applies environment variables over the defaults', () => {
    const { config, sources } = loadConfig({
      env: {
        FAIRFLAG__signals__login__failed_burst__threshold: '12',
        FAIRFLAG_KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9092',
        FAIRFLAG_REDIS_URL: 'redis://cache:6379',
      },
    });
    expect(burst(config).threshold).toBe(12);
    expect(config.kafka.brokers).toEqual(['kafka-1:9092', 'kafka-2:9092']);
    expect(config.redis.url).toBe('redis://cache:6379');
    expect(sources[1]).toMatch(/^env \(/);
  });

  it('merges a second file over the defaults, and environment variables over both', () => {
    const file = yamlFile(
      'review:\n  threshold: 2.5\n  severities:\n    - { name: low, minScore: 2.5 }\n    - { name: high, minScore: 5 }\nsignals:\n  login:\n    failed_burst:\n      threshold: 20\n',
    );
    const fromFile = loadConfig({ env: {}, file }).config;
    expect(fromFile.review.threshold).toBe(2.5);
    expect(fromFile.review.severities.map((b) => b.name)).toEqual(['low', 'high']);
    expect(burst(fromFile).threshold).toBe(20);
    // untouched siblings keep their defaults
    expect(burst(fromFile).window).toBe(900_000);
    expect(fromFile.review.strongSignalFloor).toBe(0.5);

    const both = loadConfig({ file, env: { FAIRFLAG__signals__login__failed_burst__threshold: '30' } });
    expect(burst(both.config).threshold).toBe(30);
    expect(both.sources).toEqual([
      DEFAULT_CONFIG_FILE,
      file,
      'env (FAIRFLAG__signals__login__failed_burst__threshold)',
    ]);
    // FAIRFLAG_CONFIG names the file too
    expect(loadConfig({ env: { FAIRFLAG_CONFIG: file } }).config.review.threshold).toBe(2.5);
  });

  it('validates the merged result: a file cannot slip in another action', () => {
    expect(problemsOf({ env: {}, file: yamlFile('review:\n  action: suspend\n') })).toEqual([
      'review.action: expected "review", the only action fairflag can take, got "suspend"',
    ]);
  });
});

describe('config version', () => {
  const versionOf = (env: Record<string, string>) => loadConfig({ env }).version;
  const base = versionOf({});

  it('is stable for the same policy', () => {
    expect(versionOf({})).toBe(base);
    // the same value written another way is the same policy
    expect(versionOf({ FAIRFLAG__signals__login__failed_burst__window: '900s' })).toBe(base);
  });

  it('changes when a threshold, weight, window or mitigation changes', () => {
    const changed = [
      versionOf({ FAIRFLAG__signals__login__failed_burst__threshold: '11' }),
      versionOf({ FAIRFLAG__signals__login__failed_burst__weight: '1.1' }),
      versionOf({ FAIRFLAG__signals__login__failed_burst__window: '20m' }),
      versionOf({ FAIRFLAG__mitigations__tenure__factor: '0.9' }),
      versionOf({ FAIRFLAG__review__threshold: '2.1' }),
    ];
    for (const v of changed) expect(v).not.toBe(base);
    expect(new Set(changed).size).toBe(changed.length);
  });

  it('does not change when a broker, registry, Redis or port changes', () => {
    expect(
      versionOf({
        FAIRFLAG_KAFKA_BROKERS: '10.0.0.5:9092',
        FAIRFLAG_REGISTRY_URL: 'http://registry:8081',
        FAIRFLAG_REDIS_URL: 'redis://10.0.0.6:6379',
        FAIRFLAG_HTTP_PORT: '9000',
        FAIRFLAG__topics__flags: 'risk.flags.v2',
      }),
    ).toBe(base);
  });
});

describe('validateConfig', () => {
  it('is what loadConfig uses: the parsed default file validates on its own', () => {
    const tree = parseYaml(readFileSync(DEFAULT_CONFIG_FILE, 'utf8')) as unknown;
    expect(validateConfig(tree, ['test']).version).toBe(loadConfig({ env: {} }).version);
  });
});

describe('mitigation scope in config', () => {
  it('refuses a queue that does not exist and an empty list, naming the path', () => {
    expect(
      problemsOf({ file: yamlFile('mitigations: {verified_identity: {appliesTo: [contracts, fraud]}}') }),
    ).toEqual([
      'mitigations.verified_identity.appliesTo.1: expected one of the configured queues (account_security, identity, payments, contracts), got "fraud"',
    ]);
    expect(problemsOf({ file: yamlFile('mitigations: {tenure: {appliesTo: []}}') })).toEqual([
      'mitigations.tenure.appliesTo: expected at least one review queue (disable it with enabled: false), got []',
    ]);
  });
});
