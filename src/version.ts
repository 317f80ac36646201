/** The package version, sent to the broker as the `version` client property. */
export const VERSION = '0.1.0';
