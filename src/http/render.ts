/** Server-rendered pages: nunjucks with autoescaping on, one layout, no inline script or style. */
import nunjucks from 'nunjucks';
import type { Config } from '../config.ts';
import { createTranslator, loadStrings, type Translate } from '../i18n.ts';
import { viewsDir } from '../paths.ts';

export type Render = ((template: string, vars?: Record<string, unknown>) => string) & { t: Translate };

/** `autoescape: false` is for plain-text email bodies only. */
export function createRenderer(config: Config, { autoescape = true }: { autoescape?: boolean } = {}): Render {
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(viewsDir, { noCache: config.env === 'development' }), {
    autoescape,
    throwOnUndefined: false,
  });
  const t = createTranslator(loadStrings('en'), config.env !== 'production');
  env.addGlobal('productName', config.productName);
  env.addGlobal('logoUrl', config.branding.logoUrl);
  env.addGlobal('t', t);
  const render = (template: string, vars: Record<string, unknown> = {}) => env.render(template, vars);
  return Object.assign(render, { t });
}
