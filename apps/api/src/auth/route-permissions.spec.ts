import { NestFactory, ModulesContainer } from '@nestjs/core';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { AppModule } from '../app.module';
import { IS_PUBLIC } from '../common/public.decorator';
import { loadConfig } from '../config/app-config';
import { ANY_AUTHENTICATED, REQUIRED_PERMISSION, TOKEN_CHECKED_IN_READ } from './auth.decorators';
import { PERMISSIONS } from './roles';

interface Route {
  name: string;
  isPublic: boolean;
  permission: unknown;
  tokenCheckedInRead: boolean;
}

/** Every route handler of every controller of the app, with what it declares about access. */
async function routes(): Promise<Route[]> {
  // Preview mode builds the module graph without a database or broker (as the OpenAPI script does).
  const app = await NestFactory.create(AppModule.forRoot(loadConfig({})), { preview: true, logger: false });
  try {
    const out: Route[] = [];
    for (const module of app.get(ModulesContainer).values()) {
      for (const wrapper of module.controllers.values()) {
        const controller = wrapper.metatype as { name: string; prototype: object } | null;
        if (!controller) continue;
        const proto = controller.prototype as Record<string, unknown>;
        for (const key of Object.getOwnPropertyNames(proto)) {
          const handler = proto[key];
          if (key === 'constructor' || typeof handler !== 'function') continue;
          if (Reflect.getMetadata(METHOD_METADATA, handler) === undefined) continue;
          if (Reflect.getMetadata(PATH_METADATA, handler) === undefined) continue;
          out.push({
            name: `${controller.name}.${key}`,
            isPublic:
              Reflect.getMetadata(IS_PUBLIC, handler) === true ||
              Reflect.getMetadata(IS_PUBLIC, controller) === true,
            permission: Reflect.getMetadata(REQUIRED_PERMISSION, handler),
            tokenCheckedInRead: Reflect.getMetadata(TOKEN_CHECKED_IN_READ, handler) === true,
          });
        }
      }
    }
    return out;
  } finally {
    await app.close();
  }
}

describe('Route permissions', () => {
  let all: Route[];

  beforeAll(async () => {
    all = await routes();
  });

  it('should find the routes of every controller', () => {
    expect(all.length).toBeGreaterThan(50);
    expect(all.map((r) => r.name)).toEqual(
      expect.arrayContaining(['UsersController.list', 'AuthController.login', 'HealthController.live']),
    );
  });

  it('should declare a known permission on every route that is not public', () => {
    const known: unknown[] = [...PERMISSIONS, ANY_AUTHENTICATED];
    const undeclared = all
      .filter((r) => !r.isPublic && !known.includes(r.permission))
      .map((r) => `${r.name}: ${String(r.permission)}`);
    expect(undeclared).toEqual([]);
  });

  it('should not declare a permission on a public route (the guard would never check it)', () => {
    expect(all.filter((r) => r.isPublic && r.permission !== undefined).map((r) => r.name)).toEqual([]);
  });

  it('should leave the token check to the read statement only on the routes reviewed for it', () => {
    // Such a route's handler must complete the PendingTokenCheck before it uses any data (see
    // VpnService.statusForToken and its integration test); a new one is added here deliberately.
    expect(all.filter((r) => r.tokenCheckedInRead).map((r) => r.name)).toEqual(['VpnController.status']);
  });
});
