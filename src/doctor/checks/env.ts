/**
 * Secrets in the calling shell's environment. Ward rebuilds every sandbox's
 * environment from the names in `env.pass` (plus PATH, HOME, LANG, TERM) and
 * `env.set`, so these never reach a sandboxed command unless the policy names
 * them. They do reach the agent itself, and anything it runs outside Ward.
 *
 * Only NAMES are ever reported: this check never reads a value into its output.
 */
import type { Check } from '../types.js';

/** Name fragments that mark a credential wherever they appear in the name. */
const ANYWHERE = /(TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|APIKEY|API_KEY|PRIVATE_KEY|ACCESS_KEY|AUTH_KEY|SESSION_KEY|SIGNING_KEY|COOKIE|_PAT$|^PAT_)/;
/** A `KEY` or `KEYS` segment: OPENAI_KEY, KEY_ID; not KEYBOARD, MONKEY or XKB_DEFAULT_LAYOUT. */
const KEY_SEGMENT = /(^|_)KEYS?($|_)/;
/** Providers whose variables are credentials or point at them. */
const PREFIXES = /^(AWS_|GITHUB_|GH_|GITLAB_|OPENAI|ANTHROPIC|CLAUDE_|AZURE_|GOOGLE_|GCP_|GCLOUD_|HF_|HUGGING|COHERE|MISTRAL|GROQ|REPLICATE|STRIPE_|SLACK_|TWILIO_|SENDGRID_|NPM_TOKEN|NODE_AUTH_TOKEN|PYPI_|DOCKER_(PASSWORD|AUTH|TOKEN)|VAULT_|DATABASE_URL$|DB_PASS|PG(PASSWORD|PASS)$|MYSQL_PWD$|REDIS_URL$|MONGO(DB)?_URI$|SENTRY_DSN$)/;

/**
 * Names under those prefixes that hold settings, not secrets (AWS_REGION,
 * GITHUB_WORKSPACE): dropped unless a fragment from ANYWHERE is in the name too.
 */
const SETTING = /(_REGION|_PROFILE|_CA_BUNDLE|_CONFIG_FILE|_DIR|_HOME|_PATH|_WORKSPACE|_ACTIONS|_ACTION|_ACTOR|_SHA|_REF|_REF_NAME|_RUN_ID|_RUN_NUMBER|_RUN_ATTEMPT|_JOB|_EVENT_NAME|_EVENT_PATH|_REPOSITORY|_REPOSITORY_OWNER|_SERVER_URL|_API_URL|_GRAPHQL_URL|_OUTPUT|_ENV|_STEP_SUMMARY|_WORKFLOW|_BASE_REF|_HEAD_REF|_PROJECT|_CLOUD_PROJECT|_LOCATION)$/;

/** Whether a variable's name looks like it holds a secret (its value is never looked at). */
export function looksSecret(name: string): boolean {
  const n = name.toUpperCase();
  if (ANYWHERE.test(n)) return true;
  return (KEY_SEGMENT.test(n) || PREFIXES.test(n)) && !SETTING.test(n);
}

/** Sorted names of secret-looking variables that have a non-empty value. */
export function secretNames(env: NodeJS.ProcessEnv): string[] {
  return Object.keys(env)
    .filter((k) => env[k] !== undefined && env[k] !== '' && looksSecret(k))
    .sort();
}

export const envSecretsCheck: Check = {
  id: 'env.secrets',
  title: 'no secret-looking variables in the calling shell (names only)',
  severity: 'medium',
  run(ctx) {
    const names = secretNames(ctx.env);
    const passed = names.filter((n) => ctx.policy.effective.env.pass.includes(n));
    const set = Object.keys(ctx.policy.effective.env.set).filter(looksSecret);
    if (passed.length) {
      return {
        status: 'fail',
        severity: 'high',
        evidence: `the policy's env.pass hands ${passed.join(', ')} to every sandboxed command; also in this shell: ${names.filter((n) => !passed.includes(n)).join(', ') || 'nothing else'}`,
        fix: `remove ${passed.join(', ')} from env.pass; give the sandbox a narrowly scoped credential, or broker the call from outside`,
        degrades: 'secrets never enter the sandbox',
      };
    }
    if (set.length) {
      return {
        status: 'warn',
        evidence: `the policy's env.set writes secret-looking ${set.join(', ')} into every sandbox (and into the policy, whose canonical JSON is recorded)`,
        fix: 'keep credentials out of policy files',
        degrades: 'secrets never enter the sandbox',
      };
    }
    if (names.length === 0) return { status: 'pass', evidence: 'no variable name looks like a credential' };
    return {
      status: 'warn',
      severity: 'low',
      evidence: `${names.length} secret-looking name${names.length === 1 ? '' : 's'} in this shell: ${names.join(', ')}. Ward does not pass them into a sandbox (env.pass names none of them), but the agent process itself can read them`,
      fix: `start the agent from a shell without them (e.g. \`env -u ${names[0]} ...\`), and keep them out of env.pass`,
    };
  },
};
