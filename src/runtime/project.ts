import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (where package.json is), found from this file both under src/ and dist/. */
export const PROJECT_ROOT: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('fairflag: cannot find the project root (package.json)');
    dir = up;
  }
  return dir;
})();

const PACKAGE = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
};

/** The version in package.json. */
export const PACKAGE_VERSION: string = PACKAGE.version;

/** Stamped on every flag so a case tool knows which code decided. */
export const PROCESSOR_VERSION = `${PACKAGE.name}/${PACKAGE.version}`;

let checkedOut: string | undefined;
/**
 * The git commit of the code: FAIRFLAG_COMMIT when set (the image gets it as a build argument, as
 * it has no .git), else `git rev-parse HEAD` of the checkout it runs from, else "unknown".
 */
export function buildCommit(env: NodeJS.ProcessEnv = process.env): string {
  const given = env['FAIRFLAG_COMMIT']?.trim();
  if (given) return given;
  if (checkedOut === undefined)
    try {
      checkedOut = execFileSync('git', ['rev-parse', 'HEAD'], {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 2000,
      }).trim();
    } catch {
      checkedOut = 'unknown';
    }
  return checkedOut || 'unknown';
}
