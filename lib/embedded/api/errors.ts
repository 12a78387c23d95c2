// Taskcluster's error bodies: {code, message, requestInfo}, with the status codes the real
// services use. Never a stack trace.
export type ErrorCode =
  | 'InputValidationError' | 'MalformedPayload' | 'InputError' | 'AuthenticationFailed'
  | 'InsufficientScopes' | 'ResourceNotFound' | 'RequestConflict' | 'InputTooLarge'
  | 'ResourceExpired' | 'InternalServerError' | 'NotImplemented' | 'TooManyRequests' | 'InvalidRequestArguments';

const STATUS: Record<ErrorCode, number> = {
  InputValidationError: 400, MalformedPayload: 400, InputError: 400, AuthenticationFailed: 401,
  InsufficientScopes: 403, ResourceNotFound: 404, RequestConflict: 409, InputTooLarge: 413,
  ResourceExpired: 410, InternalServerError: 500, NotImplemented: 501, TooManyRequests: 429, InvalidRequestArguments: 400,
};

export class ApiError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.status = STATUS[code];
    this.details = details;
  }
}

export const notFound = (what: string) => new ApiError('ResourceNotFound', `${what} not found`);
export const conflict = (message: string, details: Record<string, unknown> = {}) => new ApiError('RequestConflict', message, details);
export const inputError = (message: string, details: Record<string, unknown> = {}) => new ApiError('InputError', message, details);
