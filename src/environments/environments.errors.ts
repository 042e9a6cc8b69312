import { HttpStatus } from '@nestjs/common';
import { defineErrorCodes } from '../common/errors/error-code.js';

/** Refusals of the environments API. */
export const EnvironmentError = defineErrorCodes('environments', {
  NotFound: ['environment_not_found', HttpStatus.NOT_FOUND],
  PlanLimitReached: ['plan_limit_reached', HttpStatus.FORBIDDEN],
  InvalidTransition: ['invalid_transition', HttpStatus.CONFLICT],
  TemplateGone: ['template_gone', HttpStatus.CONFLICT],
});
