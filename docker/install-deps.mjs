// Runs inside `docker build` (deps stage, working directory /app), with plain node: the offline base image has
// neither a shell nor npm.
//   NPM_CI=true:  install the locked production dependencies from the registry (`npm ci --omit=dev`), ignoring any
//                 node_modules that came with the build context (it may hold another platform's add-ons).
//   NPM_CI=false: use the node_modules installed on the host (`npm ci` before the build; Linux glibc, same CPU
//                 architecture as the image) and delete what package-lock.json marks dev-only, so the image
//                 carries the same packages either way.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const npmCi = process.env.NPM_CI ?? 'true';
if (npmCi !== 'true' && npmCi !== 'false') fail(`NPM_CI must be true or false, not ${JSON.stringify(npmCi)}`);

// The Dockerfile copied this script and the build context's node_modules (if any) into host-modules/.
const HOST_MODULES = 'host-modules';

if (npmCi === 'true') {
  fs.rmSync(HOST_MODULES, { recursive: true, force: true });
  execFileSync('npm', ['ci', '--omit=dev', '--no-audit', '--no-fund'], { stdio: 'inherit' });
} else {
  if (!fs.existsSync(`${HOST_MODULES}/tsx/package.json`)) {
    fail('node_modules from the build context is missing or incomplete: run `npm ci` on the host first, ' +
      'or build with --build-arg NPM_CI=true to install from the registry inside the build');
  }
  const lock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8'));
  let removed = 0;
  for (const [path, entry] of Object.entries(lock.packages ?? {})) {
    // Lock entries are keyed by install path (node_modules/a/node_modules/b); dev: true means only devDependencies
    // reach it. devOptional entries stay: something in production may load them.
    const here = `${HOST_MODULES}/${path.slice('node_modules/'.length)}`;
    if (path.startsWith('node_modules/') && entry.dev === true && fs.existsSync(here)) {
      fs.rmSync(here, { recursive: true, force: true });
      removed++;
    }
  }
  // npm's own bookkeeping would describe packages that are gone; the script is not a package.
  fs.rmSync(`${HOST_MODULES}/.package-lock.json`, { force: true });
  fs.rmSync(`${HOST_MODULES}/install-deps.mjs`);
  // A copy, not a rename: overlayfs refuses to rename a folder that an earlier layer created (EXDEV).
  fs.cpSync(HOST_MODULES, 'node_modules', { recursive: true, verbatimSymlinks: true });
  fs.rmSync(HOST_MODULES, { recursive: true, force: true });
  process.stdout.write(`install-deps: using the host's node_modules, ${removed} dev-only packages removed\n`);
}

function fail(message) {
  process.stderr.write(`install-deps: ${message}\n`);
  process.exit(1);
}
