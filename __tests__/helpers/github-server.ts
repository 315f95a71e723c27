import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Comment {
  id: number;
  body: string;
  user: { login: string };
}

export interface Received {
  method: string;
  path: string;
  body?: unknown;
}

/**
 * A local stand-in for the GitHub REST endpoints the Action uses: the authenticated user, a PR's
 * comments (paged, with Link headers), create and update. It records every request.
 */
export class GitHubServer {
  readonly comments: Comment[] = [];
  readonly received: Received[] = [];
  login = 'github-actions[bot]';
  /** Answer /user with 403, as the Actions token does. */
  userForbidden = false;
  /** Refuse writes with 403 "Resource not accessible by integration" (fork PRs). */
  writesForbidden = false;
  private nextId = 1000;
  private server?: http.Server;
  url = '';

  add(body: string, login = this.login): Comment {
    const comment = { id: this.nextId++, body, user: { login } };
    this.comments.push(comment);
    return comment;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => void this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server?.close(resolve));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const url = new URL(req.url ?? '/', this.url);
    const body = raw ? JSON.parse(raw) : undefined;
    this.received.push({ method: req.method ?? '', path: url.pathname + url.search, body });
    const send = (status: number, data: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(data));
    };
    const forbidden = () =>
      send(403, {
        message: 'Resource not accessible by integration',
        documentation_url: 'https://docs.github.com/rest',
      });
    if (req.method === 'GET' && url.pathname === '/user') {
      if (this.userForbidden) return forbidden();
      return send(200, { login: this.login, id: 1, type: 'User' });
    }
    let m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/.exec(url.pathname);
    if (m && req.method === 'GET') {
      const perPage = Number(url.searchParams.get('per_page') ?? 30);
      const page = Number(url.searchParams.get('page') ?? 1);
      const pages = Math.max(1, Math.ceil(this.comments.length / perPage));
      const link = (p: number) => {
        const next = new URL(url);
        next.searchParams.set('page', String(p));
        return next.toString();
      };
      const headers: Record<string, string> = {};
      if (page < pages) headers.link = `<${link(page + 1)}>; rel="next", <${link(pages)}>; rel="last"`;
      return send(200, this.comments.slice((page - 1) * perPage, page * perPage), headers);
    }
    if (m && req.method === 'POST') {
      if (this.writesForbidden) return forbidden();
      return send(201, this.add(String(body?.body ?? '')));
    }
    m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/.exec(url.pathname);
    if (m && req.method === 'PATCH') {
      if (this.writesForbidden) return forbidden();
      const comment = this.comments.find((c) => c.id === Number(m?.[3]));
      if (!comment) return send(404, { message: 'Not Found' });
      comment.body = String(body?.body ?? '');
      return send(200, comment);
    }
    send(404, { message: `Not Found: ${req.method} ${url.pathname}` });
  }
}
