import { HttpStatus } from '@nestjs/common';
import { defineErrorCodes } from '../common/errors/error-code.js';

/** Refusals of the templates API. */
export const TemplateError = defineErrorCodes('templates', {
  NotFound: ['template_not_found', HttpStatus.NOT_FOUND],
  AlreadyExists: ['template_exists', HttpStatus.CONFLICT],
  ChangedConcurrently: ['template_changed_concurrently', HttpStatus.CONFLICT],
});
