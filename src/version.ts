declare const __NODE_PREP_VERSION__: string | undefined;

/** Set by the build from package.json; tests running the sources see the dev marker. */
export const VERSION: string = typeof __NODE_PREP_VERSION__ === 'string' ? __NODE_PREP_VERSION__ : '0.0.0-dev';
export const USER_AGENT = `node-prep/${VERSION} (+https://www.npmjs.com/package/node-prep)`;
