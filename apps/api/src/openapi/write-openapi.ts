import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { generateClientTypes } from './generate-client-types';
import { generateOpenApiSpec } from './generate-openapi';

/** `npm run openapi:write`: regenerates the committed openapi.json and the integrator client types. */
async function main(): Promise<void> {
  const root = resolve(__dirname, '../../../..');
  const spec = await generateOpenApiSpec();
  writeFileSync(resolve(root, 'openapi.json'), spec);
  writeFileSync(resolve(root, 'test/generated/api-types.ts'), await generateClientTypes(spec));
  console.log(`wrote openapi.json and test/generated/api-types.ts`);
}

void main();
