#!/usr/bin/env node
// fairflag's one binary. Exit codes: 0 success, 1 invalid input or config / expectation not met
// (diff: flags change), 2 usage error, 3 a service (Kafka, registry, Redis, MaxMind file) is
// unusable, 4 `run` stopped without finishing its in-flight batches (shutdown deadline, or a
// second stop signal), 5 diff's base or candidate config is invalid, 6 the input file is missing
// or cannot be read (not a regular file, too large).
import ms from 'ms';
import { watch } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig, type LoadOptions } from './runtime/config-loader.js';
import { LOG_LEVELS, createLogger, toolLogger } from './runtime/logger.js';
import { PROCESSOR_VERSION } from './runtime/project.js';

const EXIT = {
  ok: 0,
  invalid: 1,
  usage: 2,
  unavailable: 3,
  stopIncomplete: 4,
  configInvalid: 5,
  inputUnreadable: 6,
} as const;

function loadOrExit(opts: LoadOptions, code: number = EXIT.invalid) {
  try {
    return loadConfig(opts);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(code);
    }
    throw err;
  }
}

async function fail(err: unknown): Promise<never> {
  process.stderr.write(`fairflag: ${(err as Error).message}\n`);
  // an input refused (not a regular file, too large) keeps its own exit code
  if (err instanceof CommanderError) process.exit(err.exitCode);
  process.exit(err instanceof ConfigError ? EXIT.invalid : EXIT.unavailable);
}

/** --log-level for the commands people read: JSON logs on stderr only when asked for. */
const logLevelOption = (cmd: Command) =>
  cmd.option(
    '--log-level <level>',
    `JSON logs on stderr at this level (${LOG_LEVELS.join(', ')}); default: warnings and errors only, as text`,
    (v) => {
      if (!(LOG_LEVELS as readonly string[]).includes(v))
        throw new CommanderError(
          EXIT.usage,
          'fairflag.usage',
          `--log-level: expected one of ${LOG_LEVELS.join(', ')}, got "${v}"`,
        );
      return v;
    },
  );

const program = new Command()
  .name('fairflag')
  .description('Risk-signal stream processor: explainable review flags, never bans.')
  .version(PROCESSOR_VERSION)
  .exitOverride()
  .showHelpAfterError();

program
  .command('run')
  .description(
    'Run the processor: consume the input topics, emit review flags. SIGHUP or a config file change reloads the config (topics and connections only at start). SIGTERM or SIGINT stops after the in-flight batches (exit 0); past processing.shutdownTimeout, or on a second signal, exit 4. Exit 3 when the consumer cannot recover (/livez fails first).',
  )
  .option('-c, --config <file>', 'environment config merged over config/default.yaml (or FAIRFLAG_CONFIG)')
  .action(async (opts: { config?: string }) => {
    const { Processor } = await import('./kafka/processor.js');
    const log = createLogger();
    const loadOpts: LoadOptions = {
      file: opts.config,
      onWarnings: (warnings) => log.warn({ warnings }, 'config: signals that can never reach review'),
    };
    const loaded = loadOrExit(loadOpts);
    let stopping = false;
    // a fatal error may come during start (the first join): acted on once stop is defined
    let fatalDuringStart: string | undefined;
    let onFatal = (reason: string) => void (fatalDuringStart ??= reason);
    const proc = await Processor.start({
      loaded,
      log,
      reloadWith: loadOpts,
      refuseTestDatabases: true,
      onFatal: (reason) => onFatal(reason),
    }).catch(fail);
    let timer: NodeJS.Timeout | undefined;
    const reload = () => proc.reload();
    process.on('SIGHUP', reload);
    for (const file of loaded.sources.filter((s) => !s.startsWith('env'))) {
      // editors write in bursts; reload once the file has settled
      watch(file, () => {
        clearTimeout(timer);
        timer = setTimeout(reload, 300);
      }).unref();
    }
    /** Stops and exits with `code`; past processing.shutdownTimeout exits anyway, never with 0. */
    const stop = async (why: string, code: number = EXIT.ok) => {
      if (stopping) {
        // an operator who asks twice wants out now; the next owner replays from the last commit
        log.warn(
          { why, inFlight: proc.inFlightBatches(), step: proc.stopStep },
          'second stop signal: exiting at once without finishing',
        );
        process.exit(EXIT.stopIncomplete);
      }
      stopping = true;
      const timeoutMs = proc.config.processing.shutdownTimeout;
      log.info({ why, timeoutMs }, 'stop requested');
      setTimeout(() => {
        log.error(
          { timeoutMs, step: proc.stopStep, inFlight: proc.inFlightBatches() },
          'shutdown deadline (processing.shutdownTimeout) passed; exiting with work unfinished',
        );
        process.exit(code === EXIT.ok ? EXIT.stopIncomplete : code);
      }, timeoutMs);
      await proc.stop();
      process.exit(code);
    };
    // the consumer will not recover by itself: exit non-zero so that it is restarted
    onFatal = (reason) => void stop(`fatal: ${reason}`, EXIT.unavailable);
    if (fatalDuringStart) onFatal(fatalDuringStart);
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
  });

logLevelOption(program.command('check-config'))
  .description(
    'Validate the effective config (defaults + file + environment); print every problem with its path.',
  )
  .option('-c, --config <file>', 'environment config merged over config/default.yaml (or FAIRFLAG_CONFIG)')
  .option('--print', 'also print the effective config as YAML, every secret redacted')
  .action(async (opts: { config?: string; print?: boolean; logLevel?: string }) => {
    toolLogger(opts.logLevel).debug({ file: opts.config }, 'checking the config');
    const loaded = loadOrExit({ file: opts.config });
    // a hole in the policy is valid config, so a warning (exit 0), never silence
    for (const w of loaded.warnings) process.stderr.write(`warning: ${w}\n`);
    // the databases are opened and checked as `run` would: a missing or corrupt one is a problem
    const { GeoIp } = await import('./enrich/geoip.js');
    const geo = await GeoIp.open(loaded.config.maxmind).catch((err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exit(EXIT.invalid);
    });
    if (geo.testDatabases.length && !loaded.config.maxmind.allowTestDatabases)
      for (const d of geo.testDatabases)
        process.stderr.write(
          `warning: maxmind.${d.setting}: ${d.file} is a MaxMind test database ("${d.description}"); \`run\` refuses it unless maxmind.allowTestDatabases is true\n`,
        );
    if (opts.print) {
      const [{ redactConfig }, { stringify }] = await Promise.all([
        import('./runtime/secrets.js'),
        import('yaml'),
      ]);
      process.stdout.write(stringify(redactConfig(loaded.config)));
    }
    process.stdout.write(`config OK: version ${loaded.version} (${loaded.sources.join(' + ')})\n`);
  });

logLevelOption(program.command('demo'))
  .description(
    'Start the processor on the local stack, publish the reference scenarios and some bad input, print the flags.',
  )
  .option('-c, --config <file>', 'environment config merged over config/default.yaml')
  .action(async (opts: { config?: string; logLevel?: string }) => {
    const { runDemo } = await import('./tools/demo.js');
    const loaded = loadOrExit({ file: opts.config });
    // the story owns stdout; the processor's logs go to stderr (see toolLogger)
    const log = toolLogger(opts.logLevel);
    const code = await runDemo(loaded, log, (s) => process.stdout.write(`${s}\n`)).catch(fail);
    process.exit(code);
  });

interface InputOptions {
  config?: string;
  logLevel?: string;
  fromKafka?: boolean;
  since?: string;
  until?: string;
  progress?: boolean;
}

/** An ISO time, epoch ms, or a duration before now ("7d", "36h", "90m"). */
function parseTime(what: string, v: string | undefined, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  const ago = v !== undefined && /^\d+(\.\d+)?\s*[a-z]+$/i.test(v) ? ms(v as ms.StringValue) : undefined;
  const t =
    v === undefined
      ? NaN
      : ago !== undefined
        ? Date.now() - ago
        : /^\d+$/.test(v)
          ? Number(v)
          : Date.parse(v);
  if (!Number.isFinite(t))
    throw new CommanderError(
      2,
      'fairflag.time',
      `--${what}: expected an ISO time, epoch ms or a duration before now (7d, 36h), got ${JSON.stringify(v)}`,
    );
  return t;
}

/** The events to replay: an NDJSON file, or the input topics between two times. */
async function replayInput(
  file: string | undefined,
  opts: InputOptions,
  loaded: ReturnType<typeof loadConfig>,
) {
  const { readKafkaRange, readNdjson } = await import('./tools/replay.js');
  if (opts.fromKafka) {
    if (file) throw new CommanderError(2, 'fairflag.input', 'give a file or --from-kafka, not both');
    const { checkKafkaConnection, kafkaClient } = await import('./kafka/connection.js');
    const log = toolLogger(opts.logLevel);
    await checkKafkaConnection(loaded.config.kafka, log);
    const since = parseTime('since', opts.since);
    const until = parseTime('until', opts.until, Date.now());
    const items = await readKafkaRange(
      kafkaClient(loaded.config.kafka, log, '-replay'),
      loaded,
      since,
      until,
    );
    return {
      items,
      total: items.length,
      source: `topics from ${new Date(since).toISOString()} to ${new Date(until).toISOString()}`,
    };
  }
  if (!file)
    throw new CommanderError(
      2,
      'fairflag.input',
      'give an NDJSON file, or --from-kafka --since <time> [--until <time>]',
    );
  const total = await checkedInputFile(file, loaded);
  const items = [];
  for await (const item of readNdjson(file, loaded.config.tools.maxLineBytes)) items.push(item);
  return { items, total, source: file };
}

/** Refuses what is not a regular file or is too large (exit 1); the number of lines it has. */
async function checkedInputFile(file: string, loaded: ReturnType<typeof loadConfig>): Promise<number> {
  const { createReadStream, statSync } = await import('node:fs');
  const { fileKind } = await import('./runtime/config-loader.js');
  const { maxInputBytes } = loaded.config.tools;
  const refuse = (why: string) =>
    new CommanderError(EXIT.inputUnreadable, 'fairflag.input', `${file}: ${why}`);
  let size: number;
  try {
    // /dev/zero, a FIFO or a directory would be read until memory runs out, or hang
    const st = statSync(file);
    if (!st.isFile()) throw refuse(`not a regular file (${fileKind(st)})`);
    size = st.size;
  } catch (err) {
    if (err instanceof CommanderError) throw err;
    throw refuse(`cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  if (size > maxInputBytes) throw refuse(`${size} bytes, more than tools.maxInputBytes (${maxInputBytes})`);
  // lines counted as bytes stream by (for the progress bar), not by reading the file into memory
  let total = 0;
  for await (const chunk of createReadStream(file)) {
    for (let i = (chunk as Buffer).indexOf(10); i !== -1; i = (chunk as Buffer).indexOf(10, i + 1)) total++;
  }
  return total;
}

async function progressBar(enabled: boolean | undefined, total: number, label: string, unit = 'events') {
  if (enabled === false || !process.stderr.isTTY) return { update: (_n: number) => {}, stop: () => {} };
  const { SingleBar, Presets } = await import('cli-progress');
  const bar = new SingleBar(
    { format: `${label} [{bar}] {value}/{total} ${unit}`, stream: process.stderr },
    Presets.shades_classic,
  );
  bar.start(total, 0);
  return { update: (n: number) => bar.update(n), stop: () => bar.stop() };
}

/** Writes an HTML report; a file that cannot be written is a file fairflag needs (exit 3). */
async function writeReport(file: string, text: string): Promise<void> {
  const { writeFileSync } = await import('node:fs');
  try {
    writeFileSync(file, text);
  } catch (err) {
    await fail(
      new Error(`--html ${file}: cannot write (${(err as NodeJS.ErrnoException).code ?? String(err)})`),
    );
  }
}

const inputOptions = (cmd: Command) =>
  logLevelOption(cmd)
    .option('-c, --config <file>', 'environment config merged over config/default.yaml')
    .option('--from-kafka', 'read the input topics instead of a file')
    .option('--since <time>', 'with --from-kafka: first message time (ISO or epoch ms)')
    .option('--until <time>', 'with --from-kafka: stop before this time (default now)')
    .option('--no-progress', 'no progress bar on stderr');

inputOptions(
  program
    .command('replay [events.ndjson]')
    .description(
      'Replay recorded events through production\'s processors, features and scoring in an isolated Redis namespace (created and removed by the run). Lines: {"family":"login","event":{...}}; review outcomes ({"family":"review_outcome",...}, or the review-outcome topic with --from-kafka) are applied as live and label the flags: precision per queue and signal. Exit 0: all input used; 1: some lines rejected (listed with their line numbers); 6: the input file is missing or unreadable.',
    ),
)
  .option('-o, --out <flags.ndjson>', 'write every flag message as NDJSON')
  .option('--json', 'print the summary as JSON')
  .option('--keep', 'keep the replay namespace in Redis for inspection')
  .option(
    '--html <report.html>',
    'also write a self-contained HTML report (charts, flagged accounts, timelines)',
  )
  .action(
    async (
      file: string | undefined,
      opts: InputOptions & { out?: string; json?: boolean; keep?: boolean; html?: string },
    ) => {
      const { replay } = await import('./tools/replay.js');
      const { formatReplay } = await import('./tools/format.js');
      const { labelsJson } = await import('./tools/review-labels.js');
      const loaded = loadOrExit({ file: opts.config });
      const input = await replayInput(file, opts, loaded).catch(fail);
      const bar = await progressBar(opts.progress, input.total, 'replay');
      const r = await replay({
        loaded,
        items: input.items,
        keep: opts.keep ?? false,
        onProgress: bar.update,
        log: toolLogger(opts.logLevel),
      }).catch(fail);
      bar.stop();
      if (opts.out) {
        const { writeFileSync } = await import('node:fs');
        writeFileSync(
          opts.out,
          r.flags.map((f) => JSON.stringify(f)).join('\n') + (r.flags.length ? '\n' : ''),
        );
      }
      if (opts.html) {
        const { replayReport } = await import('./report/replay-report.js');
        await writeReport(opts.html, replayReport({ result: r, items: input.items, source: input.source }));
      }
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify({
            configVersion: r.configVersion,
            namespace: r.namespace,
            namespaceRemoved: r.namespaceRemoved,
            eventsRead: r.eventsRead,
            accepted: r.accepted,
            late: r.late,
            rejected: r.rejected,
            flags: [...r.finalFlags.values()],
            flagMessages: r.flags.length,
            signalFires: Object.fromEntries(r.signalFires),
            deciding: Object.fromEntries(r.deciding),
            ...(r.labels && { labels: labelsJson(r.labels) }),
          })}\n`,
        );
      } else process.stdout.write(`${formatReplay(r, input.source)}\n`);
      process.exit(r.rejected.length ? EXIT.invalid : EXIT.ok);
    },
  );

inputOptions(
  program
    .command('diff [events.ndjson]')
    .description(
      'Replay the same events under two configs and report whom the change starts or stops reviewing, and why. Exit 0: no flag changes; 1: flags change; 5: the base or candidate config is invalid; 6: the input file is missing or unreadable.',
    ),
)
  .requiredOption(
    '--candidate <file>',
    'the proposed change, merged over the base (production plus your edit)',
  )
  .option('--base <file>', 'the current config (merged over config/default.yaml); default: the defaults')
  .option('--json', 'print the result as JSON')
  .option(
    '--html <report.html>',
    'also write a self-contained HTML report (charts, changed accounts, timelines)',
  )
  .action(
    async (
      file: string | undefined,
      opts: InputOptions & { candidate: string; base?: string; json?: boolean; html?: string },
    ) => {
      const { diffConfigs } = await import('./tools/diff.js');
      const { formatDiff } = await import('./tools/format.js');
      // the candidate is a change to the base: production's config plus the analyst's edit
      const baseFile = opts.base ?? opts.config ?? process.env['FAIRFLAG_CONFIG'];
      // an invalid config has its own code: a script must not read it as "flags change"
      const base = loadOrExit({ file: baseFile }, EXIT.configInvalid);
      const candidate = loadOrExit({ file: [baseFile ?? '', opts.candidate] }, EXIT.configInvalid);
      const input = await replayInput(file, opts, base).catch(fail);
      const bar = await progressBar(opts.progress, input.total * 2, 'diff');
      const d = await diffConfigs(
        input.items,
        base,
        candidate,
        (phase, n) => bar.update(phase === 'base' ? n : input.total + n),
        toolLogger(opts.logLevel),
      ).catch(fail);
      bar.stop();
      if (opts.html) {
        const { diffReport } = await import('./report/diff-report.js');
        const report = diffReport({
          diff: d,
          items: input.items,
          source: input.source,
          baseName: baseFile ?? 'the defaults',
          candidateName: `${opts.candidate} over the base`,
        });
        await writeReport(opts.html, report);
      }
      if (opts.json) {
        const slim = (c: (typeof d.added)[number]) => ({
          accountId: c.accountId,
          queue: c.queue,
          severityBefore: c.before?.severity ?? null,
          severityAfter: c.after?.severity ?? null,
          scoreBefore: c.before?.score ?? null,
          scoreAfter: c.after?.score ?? null,
          ...(d.labels && { label: c.label }),
          signalsBefore: c.before?.signals.map((s) => s.id) ?? [],
          signalsAfter: c.after?.signals.map((s) => s.id) ?? [],
          why: c.why,
        });
        process.stdout.write(
          `${JSON.stringify({
            base: d.base.configVersion,
            candidate: d.candidate.configVersion,
            events: d.base.eventsRead,
            added: d.added.map(slim),
            removed: d.removed.map(slim),
            changed: d.changed.map(slim),
            fires: d.fires,
            ...(d.labels && { labels: d.labels }),
          })}\n`,
        );
      } else process.stdout.write(`${formatDiff(d)}\n`);
      process.exit(d.added.length + d.removed.length + d.changed.length ? EXIT.invalid : EXIT.ok);
    },
  );

inputOptions(
  program
    .command('sweep [events.ndjson]')
    .description(
      'Replay the same events once per value of one numeric setting (and once as configured): flags by queue and severity for each value and, with review outcomes in the input, precision and the confirmed accounts each value would stop reviewing. Exit 0: done; 1: some lines rejected; 2: a bad setting or values; 6: the input file is missing or unreadable.',
    ),
)
  .requiredOption(
    '--setting <path>',
    'dotted config path, e.g. review.threshold or signals.ip.shared_by_accounts.threshold',
  )
  .requiredOption('--values <list>', 'values to try: 1.5,2,2.5 or from:to:step (1:3:0.5)')
  .option('--json', 'print the result as JSON')
  .option('--html <report.html>', 'also write a self-contained HTML report (the sweep curve, the table)')
  .action(
    async (
      file: string | undefined,
      opts: InputOptions & { setting: string; values: string; json?: boolean; html?: string },
    ) => {
      const { sweepSetting, parseSweepValues, settingValue, SweepSettingError } =
        await import('./tools/sweep.js');
      const { formatSweep } = await import('./tools/format.js');
      const load = { file: opts.config };
      const loaded = loadOrExit(load);
      let values: number[];
      try {
        settingValue(loaded.config, opts.setting);
        values = parseSweepValues(opts.values);
      } catch (err) {
        if (!(err instanceof SweepSettingError)) throw err;
        process.stderr.write(`sweep: ${err.message}\n`);
        process.exit(EXIT.usage);
      }
      const input = await replayInput(file, opts, loaded).catch(fail);
      const bar = await progressBar(opts.progress, input.total * (values.length + 1), 'sweep');
      const r = await sweepSetting({
        items: input.items,
        load,
        setting: opts.setting,
        values,
        onProgress: (run, n) => bar.update(run * input.total + n),
        log: toolLogger(opts.logLevel),
      }).catch((err: unknown) => {
        bar.stop();
        if (err instanceof ConfigError || err instanceof SweepSettingError) {
          process.stderr.write(`sweep: ${err.message}\n`);
          process.exit(EXIT.usage);
        }
        return fail(err);
      });
      bar.stop();
      if (opts.html) {
        const { sweepReport } = await import('./report/sweep-report.js');
        await writeReport(opts.html, sweepReport({ result: r, source: input.source }));
      }
      process.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : `${formatSweep(r, input.source)}\n`);
      process.exit(r.rejected ? EXIT.invalid : EXIT.ok);
    },
  );

logLevelOption(program.command('shadow-report'))
  .description(
    'What the shadow candidate (shadow.candidateFile) would have done differently from the live policy over a period: from the flag topic and the shadow topic, the accounts it would start, stop or change reviewing. Exit 0: no difference; 1: differences; 3: Kafka or the registry unusable.',
  )
  .option('-c, --config <file>', 'environment config merged over config/default.yaml')
  .option('--since <time>', 'from: ISO, epoch ms or a duration before now', '1d')
  .option('--until <time>', 'until (default now)')
  .option('--json', 'print JSON')
  .action(
    async (opts: { config?: string; since: string; until?: string; json?: boolean; logLevel?: string }) => {
      const since = parseTime('since', opts.since);
      const until = parseTime('until', opts.until, Date.now());
      const loaded = loadOrExit({ file: opts.config });
      const [{ checkKafkaConnection, kafkaClient }, { Codec }, { shadowReport }, { formatShadowReport }] =
        await Promise.all([
          import('./kafka/connection.js'),
          import('./kafka/codec.js'),
          import('./tools/shadow-report.js'),
          import('./tools/format.js'),
        ]);
      const log = toolLogger(opts.logLevel);
      await checkKafkaConnection(loaded.config.kafka, log).catch(fail);
      const codec = await Codec.connect(loaded.config).catch(fail);
      const r = await shadowReport({
        kafka: kafkaClient(loaded.config.kafka, log, '-shadow-report'),
        codec,
        liveTopic: loaded.config.topics.flags,
        shadowTopic: loaded.config.topics.shadowFlags,
        since,
        until,
      }).catch(fail);
      process.stdout.write(opts.json ? `${JSON.stringify(r)}\n` : `${formatShadowReport(r)}\n`);
      process.exit(r.added.length + r.removed.length + r.changed.length ? EXIT.invalid : EXIT.ok);
    },
  );

logLevelOption(program.command('bootstrap <snapshot.ndjson>'))
  .description(
    'Load accounts\' history from the system of record before (or while) fairflag runs: one account a line, {"accountId", "createdAt", "accountType", "identityVerifiedAt", "stats": {"at", "completedContracts", "paidHours", "earnings"}, "openContracts": [{"contractId", "clientAccountId", "freelancerAccountId", "startedAt", "lastPaidAt"}]} (times in epoch ms or ISO-8601), published as the context events they stand for. Idempotent: run it again, or resume with --from-line. Exit 0: every line published; 1: some refused (listed with their line numbers); 6: the snapshot file is missing or unreadable.',
  )
  .option('-c, --config <file>', 'environment config merged over config/default.yaml')
  .option('--from-line <n>', 'resume: skip the lines before this one', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1)
      throw new CommanderError(
        EXIT.usage,
        'fairflag.usage',
        `--from-line: expected a line number, got "${v}"`,
      );
    return n;
  })
  .option('--no-progress', 'no progress bar on stderr')
  .action(
    async (
      file: string,
      opts: { config?: string; fromLine?: number; progress?: boolean; logLevel?: string },
    ) => {
      const { publishSnapshot } = await import('./tools/bootstrap.js');
      const loaded = loadOrExit({ file: opts.config });
      const total = await checkedInputFile(file, loaded).catch(fail);
      const log = toolLogger(opts.logLevel);
      const bar = await progressBar(opts.progress, total, 'bootstrap', 'lines');
      const r = await publishSnapshot({
        loaded,
        file,
        log,
        ...(opts.fromLine !== undefined && { fromLine: opts.fromLine }),
        onProgress: bar.update,
      }).catch(fail);
      bar.stop();
      for (const x of r.rejected) process.stderr.write(`${file}: line ${x.line}: ${x.error}\n`);
      process.stdout.write(
        `bootstrap of ${file}: ${r.accounts} account(s), ${r.events} context event(s) published${r.skipped ? `, ${r.skipped} line(s) skipped before --from-line` : ''}, ${r.rejected.length} line(s) refused\n`,
      );
      process.exit(r.rejected.length ? EXIT.invalid : EXIT.ok);
    },
  );

logLevelOption(program.command('explain <accountId>'))
  .description(
    'Explain one account from the feature state in Redis (as of the last batch its owner wrote): features by window, every signal against its threshold, mitigations, score, open flags. Read-only.',
  )
  .option('-c, --config <file>', 'environment config merged over config/default.yaml')
  .option(
    '--namespace <prefix>',
    "the Redis key prefix to read: a replay's kept namespace (replay --keep prints it)",
  )
  .option('--json', 'print JSON')
  .option('--html <report.html>', 'also write a self-contained HTML report (charts, timeline)')
  .action(
    async (
      accountId: string,
      opts: { config?: string; namespace?: string; json?: boolean; logLevel?: string; html?: string },
    ) => {
      const log = toolLogger(opts.logLevel);
      const loaded = loadOrExit({ file: opts.config });
      const [
        { explainStored },
        { formatExplanation },
        { connectRedis },
        { compilePolicy },
        { RedisStateBackend },
        { GeoIp },
      ] = await Promise.all([
        import('./tools/explain.js'),
        import('./tools/format.js'),
        import('./kafka/processor.js'),
        import('./engine/policy.js'),
        import('./features/state-backend.js'),
        import('./enrich/geoip.js'),
      ]);
      const policy = compilePolicy(loaded);
      const geo = await GeoIp.open(loaded.config.maxmind).catch(fail);
      const redis = connectRedis(loaded.config.redis);
      await redis.connect().catch(fail);
      const namespace = opts.namespace ?? loaded.config.redis.keyPrefix;
      const backend = new RedisStateBackend(redis, namespace);
      log.info({ accountId, keyPrefix: namespace }, 'explaining from the stored features');
      const e = await explainStored(accountId, backend, policy, geo).catch(fail);
      redis.disconnect();
      if (opts.html) {
        const { explainReport } = await import('./report/explain-report.js');
        await writeReport(opts.html, explainReport({ explanation: e }));
      }
      process.stdout.write(
        opts.json
          ? `${JSON.stringify({ namespace, ...e })}\n`
          : `${opts.namespace ? `namespace ${namespace}\n` : ''}${formatExplanation(e)}\n`,
      );
      process.exit(e.known ? EXIT.ok : EXIT.invalid);
    },
  );

program
  .command('signals')
  .description(
    'What reviewers decided about the flags, per period and queue and per signal: the flags reviewed (the denominator), confirmed, cleared, needing more info, and precision = confirmed / (confirmed + cleared). Read from Redis; each decision counted once, however often its batch was written.',
  )
  .option('-c, --config <file>', 'environment config merged over config/default.yaml')
  .option('--since <time>', 'first decision time: ISO, epoch ms or a duration before now', '30d')
  .option('--until <time>', 'last decision time (default now)')
  .option('--period <period>', 'day, week (from Monday, UTC) or month', 'week')
  .option('--json', 'print JSON')
  .action(
    async (opts: { config?: string; since: string; until?: string; period: string; json?: boolean }) => {
      const [{ connectRedis }, { RedisStateBackend }, { reviewReport, PERIODS }, { formatReviews }] =
        await Promise.all([
          import('./kafka/processor.js'),
          import('./features/state-backend.js'),
          import('./tools/review-report.js'),
          import('./tools/format.js'),
        ]);
      const period = PERIODS.find((p) => p === opts.period);
      if (!period)
        throw new CommanderError(
          2,
          'fairflag.period',
          `--period: expected one of ${PERIODS.join(', ')}, got ${JSON.stringify(opts.period)}`,
        );
      const since = parseTime('since', opts.since);
      const until = parseTime('until', opts.until, Date.now());
      const loaded = loadOrExit({ file: opts.config });
      const redis = connectRedis(loaded.config.redis);
      await redis.connect().catch(fail);
      const records = await new RedisStateBackend(redis, loaded.config.redis.keyPrefix)
        .reviews(since, until)
        .catch(fail);
      redis.disconnect();
      const report = reviewReport(records, { since, until, period });
      process.stdout.write(opts.json ? `${JSON.stringify(report)}\n` : `${formatReviews(report)}\n`);
    },
  );

program
  .command('scenarios')
  .description(
    'Write the reference scenarios (the travelling freelancer and the account takeover) as NDJSON, ready for replay and diff.',
  )
  .option('-o, --out <file>', 'output file (default: stdout)')
  .action(async (opts: { out?: string }) => {
    const { DAY, HOUR, accountTakeover, travellingFreelancer } = await import('./scenarios/reference.js');
    const runId = 'ndjson';
    const now = Date.now();
    const events = [travellingFreelancer(now - 11 * DAY, runId), accountTakeover(now - 2 * HOUR, runId)]
      .flatMap((s) => s.phases.flat())
      .sort((a, b) => a.event.occurredAt - b.event.occurredAt);
    const text = events.map((e) => JSON.stringify(e)).join('\n') + '\n';
    if (opts.out) (await import('node:fs')).writeFileSync(opts.out, text);
    else process.stdout.write(text);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    if (err.code.startsWith('fairflag.')) {
      process.stderr.write(`fairflag: ${err.message}\n`);
      process.exit(err.exitCode);
    }
    process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
  }

  await fail(err);
}
