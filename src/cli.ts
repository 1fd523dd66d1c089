#!/usr/bin/env node
// fairflag's one binary. Exit codes: 0 success, 1 invalid input or config / expectation not met,
// 2 usage error, 3 a service (Kafka, registry, Redis, MaxMind file) is unusable.
import { watch } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig, type LoadOptions } from './runtime/config-loader.js';
import { createLogger } from './runtime/logger.js';
import { PROCESSOR_VERSION } from './runtime/project.js';

const EXIT = { ok: 0, invalid: 1, usage: 2, unavailable: 3 } as const;

function loadOrExit(opts: LoadOptions) {
  try {
    return loadConfig(opts);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(EXIT.invalid);
    }
    throw err;
  }
}

async function fail(err: unknown): Promise<never> {
  process.stderr.write(`fairflag: ${(err as Error).message}\n`);
  process.exit(err instanceof ConfigError ? EXIT.invalid : EXIT.unavailable);
}

const program = new Command()
  .name('fairflag')
  .description('Risk-signal stream processor: explainable review flags, never bans.')
  .version(PROCESSOR_VERSION)
  .exitOverride()
  .showHelpAfterError();

program
  .command('run')
  .description(
    'Run the processor: consume the input topics, emit review flags. SIGHUP or a config file change reloads the config; SIGTERM stops after the in-flight batch.',
  )
  .option('-c, --config <file>', 'environment config merged over config/default.yaml (or FAIRFLAG_CONFIG)')
  .action(async (opts: { config?: string }) => {
    const { Processor } = await import('./kafka/processor.js');
    const log = createLogger();
    const loadOpts: LoadOptions = { file: opts.config };
    const loaded = loadOrExit(loadOpts);
    const proc = await Processor.start({ loaded, log, reloadWith: loadOpts }).catch(fail);
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
    const stop = async (signal: string) => {
      log.info({ signal }, 'stop requested');
      await proc.stop();
      process.exit(EXIT.ok);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });

program
  .command('check-config')
  .description(
    'Validate the effective config (defaults + file + environment); print every problem with its path.',
  )
  .option('-c, --config <file>', 'environment config merged over config/default.yaml (or FAIRFLAG_CONFIG)')
  .action((opts: { config?: string }) => {
    const loaded = loadOrExit({ file: opts.config });
    process.stdout.write(`config OK: version ${loaded.version} (${loaded.sources.join(' + ')})\n`);
  });

program
  .command('demo')
  .description(
    'Start the processor on the local stack, publish the reference scenarios and some bad input, print the flags.',
  )
  .option('-c, --config <file>', 'environment config merged over config/default.yaml')
  .action(async (opts: { config?: string }) => {
    const { runDemo } = await import('./tools/demo.js');
    const loaded = loadOrExit({ file: opts.config });
    // the processor's JSON logs go to stderr at warn level so the story on stdout stays readable
    const log = createLogger('fairflag', process.stderr);
    log.level = process.env['FAIRFLAG_LOG_LEVEL'] ?? 'warn';
    const code = await runDemo(loaded, log, (s) => process.stdout.write(`${s}\n`)).catch(fail);
    process.exit(code);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
  await fail(err);
}
