import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { generateClientTypes } from './generate-client-types';

/**
 * Prints the client types generated from the committed openapi.json. Run as a
 * separate Node process by the drift test: openapi-typescript pulls in ES
 * modules that Jest's sandbox cannot load.
 */
void generateClientTypes(readFileSync(resolve(__dirname, '../../../../openapi.json'), 'utf8')).then((types) =>
  process.stdout.write(types),
);
