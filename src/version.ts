/** Ward's version, recorded in every launch record. Kept in step with package.json by a test. */
export const WARD_VERSION = '0.1.0';
