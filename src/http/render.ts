/** Server-rendered pages: nunjucks with autoescaping on, one layout, no inline script or style. */
import nunjucks from 'nunjucks';
import type { Config } from '../config.ts';
import { viewsDir } from '../paths.ts';

export type Render = (template: string, vars?: Record<string, unknown>) => string;

export function createRenderer(config: Config): Render {
  const env = new nunjucks.Environment(new nunjucks.FileSystemLoader(viewsDir, { noCache: config.env === 'development' }), {
    autoescape: true,
    throwOnUndefined: false,
  });
  env.addGlobal('productName', config.productName);
  return (template, vars = {}) => env.render(template, vars);
}
